const STORAGE_KEY = 'webrtc-kvs-agent-viewer-params';

/**
 * The agent's parameters for this page (`token`, `headed`), from the URL fragment. They are moved out of the
 * URL at once, into this tab's sessionStorage: a headed window's address bar must not show the bridge
 * token, and a reload (the agent's recovery for a hung page) still finds them.
 */
export function takePageParams(): URLSearchParams {
  const fragment = location.hash.slice(1);
  if (fragment) {
    try {
      sessionStorage.setItem(STORAGE_KEY, fragment);
      history.replaceState(null, '', location.pathname + location.search);
    } catch {
      // No storage (unusual): keep the fragment, a reload needs it.
      return new URLSearchParams(fragment);
    }
  }
  let stored: string | null = null;
  try {
    stored = sessionStorage.getItem(STORAGE_KEY);
  } catch {
    // As above.
  }
  return new URLSearchParams(stored ?? '');
}
