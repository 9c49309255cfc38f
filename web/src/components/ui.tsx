import { useId, useState } from 'react';
import { AlertIcon, CheckIcon, InfoIcon, TrashIcon } from './Icons';

export function PageHeader({ title, description, actions }: { title: string; description?: React.ReactNode; actions?: React.ReactNode }) {
  return (
    <header className="page-header">
      <div>
        <h1>{title}</h1>
        {description && <p className="page-header__desc">{description}</p>}
      </div>
      {actions && <div className="page-header__actions">{actions}</div>}
    </header>
  );
}

export function Card({ title, actions, children, className }: { title?: React.ReactNode; actions?: React.ReactNode; children: React.ReactNode; className?: string }) {
  return (
    <section className={`card ${className ?? ''}`}>
      {(title || actions) && (
        <div className="card__header">
          {title && <h2 className="card__title">{title}</h2>}
          {actions && <div className="card__actions">{actions}</div>}
        </div>
      )}
      {children}
    </section>
  );
}

export function Alert({ kind = 'error', children, onDismiss }: { kind?: 'error' | 'info' | 'success' | 'warning'; children: React.ReactNode; onDismiss?: () => void }) {
  return (
    <div className={`alert alert--${kind}`} role={kind === 'error' ? 'alert' : 'status'}>
      {kind === 'error' || kind === 'warning' ? (
        <AlertIcon className="alert__icon" />
      ) : kind === 'success' ? (
        <CheckIcon size={18} className="alert__icon" />
      ) : (
        <InfoIcon className="alert__icon" />
      )}
      <div className="alert__body">{children}</div>
      {onDismiss && (
        <button type="button" className="alert__close" onClick={onDismiss} aria-label="Dismiss message">
          ×
        </button>
      )}
    </div>
  );
}

export function EmptyState({ title, children, icon }: { title: string; children?: React.ReactNode; icon?: React.ReactNode }) {
  return (
    <div className="empty">
      {icon && <div className="empty__icon">{icon}</div>}
      <p className="empty__title">{title}</p>
      {children && <div className="empty__text">{children}</div>}
    </div>
  );
}

export function Loading({ label = 'Loading…' }: { label?: string }) {
  return (
    <div className="loading" role="status" aria-live="polite">
      <span className="spinner" aria-hidden="true" />
      <span>{label}</span>
    </div>
  );
}

export function Spinner() {
  return <span className="spinner spinner--sm" aria-hidden="true" />;
}

/** A labelled form control with its hint and error, wired with aria-describedby. */
export function Field({
  label,
  error,
  hint,
  children,
  optional,
}: {
  label: string;
  error?: string;
  hint?: React.ReactNode;
  optional?: boolean;
  children: (props: { id: string; 'aria-invalid': boolean; 'aria-describedby'?: string }) => React.ReactNode;
}) {
  const id = useId();
  const hintId = hint ? `${id}-hint` : undefined;
  const errId = error ? `${id}-err` : undefined;
  const describedBy = [errId, hintId].filter(Boolean).join(' ') || undefined;
  return (
    <div className={`field ${error ? 'field--error' : ''}`}>
      <label htmlFor={id} className="field__label">
        {label}
        {optional && <span className="field__optional"> (optional)</span>}
      </label>
      {children({ id, 'aria-invalid': !!error, 'aria-describedby': describedBy })}
      {error && (
        <p className="field__error" id={errId}>
          {error}
        </p>
      )}
      {hint && !error && (
        <p className="field__hint" id={hintId}>
          {hint}
        </p>
      )}
    </div>
  );
}

/** Delete (or revoke) in two steps (no browser dialog): "Delete" → "Confirm delete" / "Cancel". */
export function ConfirmDelete({ label, onConfirm, busy, verb = 'Delete' }: { label: string; onConfirm: () => void; busy?: boolean; verb?: string }) {
  const [asking, setAsking] = useState(false);
  const lower = verb.toLowerCase();
  if (!asking) {
    return (
      <button type="button" className="btn btn--ghost btn--sm btn--danger-text" onClick={() => setAsking(true)} aria-label={`${verb} ${label}`}>
        <TrashIcon size={14} /> {verb}
      </button>
    );
  }
  return (
    <span className="confirm">
      <button
        type="button"
        className="btn btn--danger btn--sm"
        disabled={busy}
        onClick={() => {
          onConfirm();
          setAsking(false);
        }}
        aria-label={`Confirm ${lower} ${label}`}
        autoFocus
      >
        Confirm {lower}
      </button>
      <button type="button" className="btn btn--ghost btn--sm" onClick={() => setAsking(false)}>
        Cancel
      </button>
    </span>
  );
}

/** Form-level summary of API field errors that no visible field shows. */
export function OtherFieldErrors({ errors, shown }: { errors: Record<string, string>; shown: string[] }) {
  const rest = Object.entries(errors).filter(([k]) => !shown.includes(k));
  if (rest.length === 0) return null;
  return (
    <ul className="field-errors">
      {rest.map(([k, v]) => (
        <li key={k}>
          <code>{k}</code>: {v}
        </li>
      ))}
    </ul>
  );
}
