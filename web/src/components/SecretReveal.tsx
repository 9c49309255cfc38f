import { useEffect, useId, useRef, useState, type ReactNode } from 'react';
import { errorMessage } from '../api/client';
import { copyText } from '../lib/clipboard';
import { CheckIcon, CopyIcon } from './Icons';
import { Alert } from './ui';

/**
 * The one-time view of a secret the server never shows again (an API token, a webhook's signing
 * secret): focused and selected at once, so it is announced and Ctrl+C works, with a Copy button.
 */
export function SecretReveal({
  title,
  hideLabel,
  warning,
  secretLabel,
  secret,
  copiedStatus,
  onDismiss,
  children,
}: {
  title: ReactNode;
  hideLabel: string;
  warning: ReactNode;
  secretLabel: string;
  secret: string;
  /** Announced to screen readers after a copy. */
  copiedStatus: string;
  onDismiss: () => void;
  /** Shown under the secret. */
  children?: ReactNode;
}) {
  const id = useId();
  const inputRef = useRef<HTMLInputElement>(null);
  const [copy, setCopy] = useState<'idle' | 'copied' | { error: string }>('idle');

  useEffect(() => {
    inputRef.current?.focus();
    inputRef.current?.select();
  }, [secret]);

  useEffect(() => {
    if (copy !== 'copied') return;
    const t = setTimeout(() => setCopy('idle'), 4000);
    return () => clearTimeout(t);
  }, [copy]);

  return (
    <section className="card token-reveal" aria-labelledby={`${id}-title`}>
      <div className="card__header">
        <h2 className="card__title token-reveal__title" id={`${id}-title`}>
          <span className="token-reveal__icon" aria-hidden="true">
            <CheckIcon size={14} />
          </span>
          {title}
        </h2>
        <div className="card__actions">
          <button type="button" className="btn btn--secondary btn--sm" onClick={onDismiss}>
            {hideLabel}
          </button>
        </div>
      </div>
      <Alert kind="warning">{warning}</Alert>
      <div className="secret">
        <label htmlFor={`${id}-secret`} className="sr-only">
          {secretLabel}
        </label>
        <input
          ref={inputRef}
          id={`${id}-secret`}
          className="input mono secret__value"
          readOnly
          value={secret}
          spellCheck={false}
          autoComplete="off"
          onFocus={(e) => e.currentTarget.select()}
        />
        <button
          type="button"
          className="btn btn--primary"
          onClick={() =>
            copyText(secret).then(
              () => setCopy('copied'),
              (e) => setCopy({ error: errorMessage(e) }),
            )
          }
        >
          {copy === 'copied' ? <CheckIcon size={15} /> : <CopyIcon size={15} />}
          {copy === 'copied' ? 'Copied' : 'Copy'}
        </button>
      </div>
      <p className="sr-only" role="status">
        {copy === 'copied' ? copiedStatus : ''}
      </p>
      {typeof copy === 'object' && <Alert>{copy.error}</Alert>}
      {children}
    </section>
  );
}
