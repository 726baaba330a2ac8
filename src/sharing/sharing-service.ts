/**
 * Sharing as a service, wired once in `src/workspace/open.ts`: this
 * workspace's identity, its trusted peers, the shares it produces and the
 * ones it consumes.
 */
import type { Change } from '../policy/changes.js';
import type { Predicate } from '../policy/predicate.js';
import type { Db } from '../store/db.js';
import type { StateService } from '../workspace/state-service.js';
import { isReplication, refuseReplicaEdits, touchesCatalogs } from './admit.js';
import { createConsumer, readReplicaOwners, type Consumer } from './consumer.js';
import { createIdentityStore, type IdentityStore } from './identity.js';
import { createPeerStore, type PeerStore } from './peers.js';
import { createProducer, type Producer } from './producer.js';

export interface SharingService {
  readonly identity: IdentityStore;
  readonly peers: PeerStore;
  readonly producer: Producer;
  readonly consumer: Consumer;
}

export function createSharingService(deps: {
  readonly db: Db;
  readonly state: Pick<StateService, 'snapshot' | 'change' | 'log'>;
  readonly parsePredicate: (sql: string) => Promise<Predicate>;
  readonly pullIntervalMs?: number;
}): SharingService {
  const identity = createIdentityStore(deps.db);
  const peers = createPeerStore(deps.db, async () => (await identity.get()).publicKey);
  const producer = createProducer({ db: deps.db, state: deps.state, identity, peers, parsePredicate: deps.parsePredicate });
  const consumer = createConsumer({ db: deps.db, state: deps.state, identity, peers, ...(deps.pullIntervalMs === undefined ? {} : { pullIntervalMs: deps.pullIntervalMs }) });
  return { identity, peers, producer, consumer };
}

/**
 * The state service's admission rule for replicas: a change that is not
 * replication's own may not edit a replicated catalog. Reads which catalogs
 * are replicas only when a change touches catalogs at all.
 */
export function replicaGuard(db: Pick<Db, 'query'>): (changes: readonly Change[], action: string) => Promise<void> {
  return async (changes, action) => {
    if (isReplication(action) || !touchesCatalogs(changes)) return;
    refuseReplicaEdits(changes, action, new Set((await readReplicaOwners(db)).keys()));
  };
}
