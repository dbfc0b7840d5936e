// pgpass (node-postgres's password-file reader) ships no types.
declare module 'pgpass' {
  const pgpass: (info: { host: string; port: number; database: string; user: string }, cb: (password: string | undefined) => void) => void;
  export default pgpass;
}
