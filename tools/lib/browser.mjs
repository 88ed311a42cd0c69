// What a browser sends when the user opens a page from the address bar: the headers the gate reads
// to tell a navigation (login redirect) from an API call (401). One definition for the benchmark
// and the tests.

/** A top-level navigation, as Chromium sends it. */
export const NAVIGATE = Object.freeze({
  accept: 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8',
  'sec-fetch-mode': 'navigate',
  'sec-fetch-site': 'none',
  'sec-fetch-dest': 'document',
});
