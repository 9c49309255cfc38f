// Small inline SVG icons (no icon font, nothing from the network).
type P = { size?: number; className?: string };

const svg = (size: number, className: string | undefined, children: React.ReactNode) => (
  <svg
    width={size}
    height={size}
    viewBox="0 0 24 24"
    fill="none"
    stroke="currentColor"
    strokeWidth={2}
    strokeLinecap="round"
    strokeLinejoin="round"
    aria-hidden="true"
    focusable="false"
    className={className}
  >
    {children}
  </svg>
);

export const StopIcon = ({ size = 14, className }: P) => (
  <svg width={size} height={size} viewBox="0 0 24 24" aria-hidden="true" focusable="false" className={className}>
    <rect x="5" y="5" width="14" height="14" rx="2" fill="currentColor" />
  </svg>
);
export const ChevronIcon = ({ size = 16, className }: P) => svg(size, className, <path d="M9 6l6 6-6 6" />);
export const PlayIcon = ({ size = 16, className }: P) => (
  <svg width={size} height={size} viewBox="0 0 24 24" aria-hidden="true" focusable="false" className={className}>
    <path d="M7 4.5v15l12.5-7.5z" fill="currentColor" />
  </svg>
);
export const ShieldIcon = ({ size = 22, className }: P) => (
  <svg width={size} height={size} viewBox="0 0 32 32" aria-hidden="true" focusable="false" className={className}>
    <rect width="32" height="32" rx="8" fill="currentColor" />
    <path d="M16 6l8 3v6c0 5.2-3.4 9.6-8 11-4.6-1.4-8-5.8-8-11V9z" fill="#fff" />
    <path d="M12.5 16l2.5 2.5 4.5-5" fill="none" stroke="currentColor" strokeWidth="2.2" strokeLinecap="round" strokeLinejoin="round" />
  </svg>
);
export const ClockIcon = ({ size = 18, className }: P) =>
  svg(size, className, <><circle cx="12" cy="12" r="9" /><path d="M12 7v5l3 2" /></>);
export const KeyIcon = ({ size = 18, className }: P) =>
  svg(size, className, <><circle cx="7.5" cy="15.5" r="3.5" /><path d="M10 13l9-9M16 7l2 2M14 9l2 2" /></>);
export const ServerIcon = ({ size = 18, className }: P) =>
  svg(size, className, <><rect x="3" y="4" width="18" height="7" rx="2" /><rect x="3" y="13" width="18" height="7" rx="2" /><path d="M7 7.5h.01M7 16.5h.01" /></>);
export const UsersIcon = ({ size = 18, className }: P) =>
  svg(size, className, <><circle cx="9" cy="8" r="3.5" /><path d="M2.5 20c.8-3.6 3.4-5.5 6.5-5.5s5.7 1.9 6.5 5.5" /><path d="M16 4.6a3.5 3.5 0 010 6.8M18 14.8c1.9.7 3.1 2.4 3.5 5.2" /></>);
export const BadgeIcon = ({ size = 18, className }: P) =>
  svg(size, className, <><rect x="4" y="3" width="16" height="18" rx="2" /><circle cx="12" cy="10" r="3" /><path d="M8 17c.7-1.8 2.2-2.7 4-2.7s3.3.9 4 2.7" /></>);
export const DocIcon = ({ size = 18, className }: P) =>
  svg(size, className, <><path d="M6 3h8l4 4v14H6z" /><path d="M14 3v4h4M9 12h6M9 16h6" /></>);
export const ListIcon = ({ size = 18, className }: P) =>
  svg(size, className, <path d="M8 6h13M8 12h13M8 18h13M3.5 6h.01M3.5 12h.01M3.5 18h.01" />);
export const BuildingIcon = ({ size = 18, className }: P) =>
  svg(size, className, <><rect x="4" y="3" width="16" height="18" rx="1.5" /><path d="M9 7h.01M15 7h.01M9 11h.01M15 11h.01M9 15h.01M15 15h.01M10 21v-3h4v3" /></>);
export const MenuIcon = ({ size = 20, className }: P) => svg(size, className, <path d="M4 6h16M4 12h16M4 18h16" />);
export const CloseIcon = ({ size = 20, className }: P) => svg(size, className, <path d="M6 6l12 12M18 6L6 18" />);
export const RefreshIcon = ({ size = 16, className }: P) =>
  svg(size, className, <><path d="M20 11a8 8 0 10-2.3 5.7" /><path d="M20 4v7h-7" /></>);
export const CopyIcon = ({ size = 16, className }: P) =>
  svg(size, className, <><rect x="9" y="9" width="11" height="11" rx="2" /><path d="M5 15V5a1 1 0 011-1h10" /></>);
export const PlusIcon = ({ size = 16, className }: P) => svg(size, className, <path d="M12 5v14M5 12h14" />);
export const InfoIcon = ({ size = 18, className }: P) =>
  svg(size, className, <><circle cx="12" cy="12" r="9" /><path d="M12 11v5M12 8h.01" /></>);
export const AlertIcon = ({ size = 18, className }: P) =>
  svg(size, className, <><path d="M12 3l9.5 17h-19z" /><path d="M12 10v4M12 17h.01" /></>);
export const LogoutIcon = ({ size = 16, className }: P) =>
  svg(size, className, <><path d="M15 4h3a2 2 0 012 2v12a2 2 0 01-2 2h-3" /><path d="M10 17l-5-5 5-5M5 12h11" /></>);
export const TrashIcon = ({ size = 16, className }: P) =>
  svg(size, className, <><path d="M4 7h16M10 11v6M14 11v6M6 7l1 13h10l1-13M9 7V4h6v3" /></>);
export const EditIcon = ({ size = 16, className }: P) =>
  svg(size, className, <><path d="M4 20h4L19 9l-4-4L4 16z" /><path d="M13.5 6.5l4 4" /></>);
export const CheckIcon = ({ size = 16, className }: P) => svg(size, className, <path d="M5 12.5l4.5 4.5L19 7" />);
export const TerminalIcon = ({ size = 18, className }: P) =>
  svg(size, className, <><rect x="3" y="4" width="18" height="16" rx="2" /><path d="M7 9l3 3-3 3M12.5 15H17" /></>);
export const BellIcon = ({ size = 18, className }: P) =>
  svg(size, className, <path d="M6 16V11a6 6 0 0 1 12 0v5l1.5 2h-15zM10 20.5a2 2 0 0 0 4 0" />);
