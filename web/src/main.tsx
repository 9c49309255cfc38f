import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { App } from './App';
import { loadConfig } from './config';
import './styles.css';

const root = createRoot(document.getElementById('root')!);

loadConfig()
  .then((config) =>
    root.render(
      <StrictMode>
        <App config={config} />
      </StrictMode>,
    ),
  )
  .catch((e: unknown) =>
    root.render(
      <div className="fullpage">
        <div className="alert alert--error" role="alert">
          EntryGuard cannot start: {e instanceof Error ? e.message : String(e)}
        </div>
      </div>,
    ),
  );
