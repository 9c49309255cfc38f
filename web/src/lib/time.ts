const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

/** "1 h 59 min", "45 min", "2 h" — rounded down to the minute. */
export function formatSpan(ms: number): string {
  const totalMin = Math.floor(Math.abs(ms) / MINUTE);
  const h = Math.floor(totalMin / 60);
  const m = totalMin % 60;
  if (h === 0) return `${m} min`;
  if (m === 0) return `${h} h`;
  return `${h} h ${m} min`;
}

/** "in 1 h 59 min", "in less than a minute", "5 min ago", "just now". */
export function formatRelative(iso: string, now: number): string {
  const diff = Date.parse(iso) - now;
  if (diff >= 0) return diff < MINUTE ? 'in less than a minute' : `in ${formatSpan(diff)}`;
  return -diff < MINUTE ? 'just now' : `${formatSpan(diff)} ago`;
}

/**
 * For dates days or months away (token expiry, last use): "in 90 days", "3 h ago", "just now".
 * Whole days are rounded, so a 90-day token reads "in 90 days" right after its creation.
 */
export function formatRelativeCoarse(iso: string, now: number): string {
  const diff = Date.parse(iso) - now;
  const abs = Math.abs(diff);
  if (abs < HOUR) return formatRelative(iso, now);
  let span: string;
  if (abs < DAY) span = `${Math.floor(abs / HOUR)} h`;
  else {
    const days = Math.round(abs / DAY);
    span = days === 1 ? '1 day' : `${days} days`;
  }
  return diff >= 0 ? `in ${span}` : `${span} ago`;
}

/** The exact local time, e.g. "Nov 22, 2026, 3:31 PM" in the browser's locale. */
export function formatDateTime(iso: string, withSeconds = false): string {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return d.toLocaleString(undefined, {
    year: 'numeric',
    month: 'short',
    day: 'numeric',
    hour: '2-digit',
    minute: '2-digit',
    second: withSeconds ? '2-digit' : undefined,
  });
}

export function formatTime(iso: string): string {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit' });
}

export function formatDate(iso: string): string {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? '' : d.toLocaleDateString(undefined, { year: 'numeric', month: 'short', day: 'numeric' });
}

export function hoursLabel(h: number): string {
  return h === 1 ? '1 hour' : `${h} hours`;
}

export { DAY, HOUR, MINUTE };
