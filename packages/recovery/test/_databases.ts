// The plan database for tests on either backend (not a test file): a SQLite file in a temporary
// directory, or a fresh schema on a private PostgreSQL server started for the calling test file
// (initdb; the same helper @smki/store's and the key store's tests use).
import { join } from 'node:path';
import type { PostgresStateStoreOptions } from '@smki/store';
import { connectionOf, postgresForThisFile, type PgServer } from '../../store/test/_postgres.js';
import { tempDir } from './_fixtures.js';

/** The plan database backends every parameterised test runs on. */
export const DATABASES = ['sqlite', 'postgres'] as const;
export type DatabaseKind = (typeof DATABASES)[number];
/** Where a plan database is: pass it to `RecoveryPlans.open` (the same value opens the same database again). */
export type PlanWhere = { readonly path: string } | { readonly postgres: PostgresStateStoreOptions };

/** Start a PostgreSQL server for the calling file; `fresh(kind)` names a new, empty plan database. */
export function planDatabases(prefix: string): { pg: PgServer; fresh: (kind: DatabaseKind) => PlanWhere } {
  const { pg } = postgresForThisFile(prefix);
  let n = 0;
  return {
    pg,
    fresh: (kind) => (kind === 'sqlite' ? { path: join(tempDir(), 'plans.db') } : { postgres: { ...connectionOf(pg), schema: `plans_${process.pid}_${++n}` } }),
  };
}
