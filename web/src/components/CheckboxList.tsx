/** A labelled group of checkboxes for picking several items (resources, members). */
export function CheckboxList({
  legend,
  items,
  selected,
  onChange,
  empty,
  error,
}: {
  legend: string;
  items: { id: string; label: string; detail?: string }[];
  selected: string[];
  onChange: (ids: string[]) => void;
  empty: string;
  error?: string;
}) {
  const toggle = (id: string) =>
    onChange(selected.includes(id) ? selected.filter((x) => x !== id) : [...selected, id]);
  return (
    <fieldset className={`fieldset ${error ? 'field--error' : ''}`}>
      <legend>
        {legend} <span className="muted small">({selected.length} selected)</span>
      </legend>
      {error && <p className="field__error">{error}</p>}
      {items.length === 0 ? (
        <p className="muted small">{empty}</p>
      ) : (
        <div className="checklist">
          {items.map((i) => (
            <label key={i.id} className="check">
              <input type="checkbox" checked={selected.includes(i.id)} onChange={() => toggle(i.id)} />
              <span>
                {i.label}
                {i.detail && <span className="muted small"> · {i.detail}</span>}
              </span>
            </label>
          ))}
        </div>
      )}
    </fieldset>
  );
}
