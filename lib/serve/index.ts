// Serving over HTTP: serve() and its Server.
export { Server, serve } from './server';
export type { ServeOptions } from './options';
