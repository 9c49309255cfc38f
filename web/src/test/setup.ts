import { notifyManager } from '@tanstack/react-query';
import '@testing-library/jest-dom/vitest';
import { cleanup } from '@testing-library/react';
import { afterEach } from 'vitest';

afterEach(() => {
  cleanup();
  sessionStorage.clear();
});

// React Query hands results to components on a zero-delay timer; under fake timers that timer would
// wait for the next advance, so tests that step time see answers a step late. A microtask keeps the
// order and needs no timer.
notifyManager.setScheduler(queueMicrotask);
