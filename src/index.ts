/**
 * hctunnel as a library (package.json `exports["."]`, built to dist/index.js): start proxies inside a Node
 * program, with hooks that authenticate and route each request, and anonymize a parent proxy for a
 * browser. The guide is docs/library.md; the types are src/lib/api.ts (published as dist/types/api.d.ts).
 * It must only re-export: the library lives in src/lib.
 */
export { anonymizeProxy, closeAnonymizedProxy } from "./lib/anonymize.ts"
export { ProxyError, startProxy } from "./lib/startProxy.ts"
