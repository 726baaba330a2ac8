/**
 * The embedded store's change feed (src/store/change-feed.ts `embeddedFeed`):
 * PGlite hears its own NOTIFYs as each transaction commits, so the state
 * service trusts its snapshot until one arrives, without reading the version
 * per request. Hostile: a policy write that does not go through the state
 * service (the access service writes in its own transactions) must still be in
 * the very next decision.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { openPglite, type Db } from '../../src/store/db.js';
import { migrate } from '../../src/store/migrations.js';
import { embeddedFeed, notifyChange, type ChangeFeed } from '../../src/store/change-feed.js';
import { createStateStore } from '../../src/store/state-store.js';
import { createStateService } from '../../src/workspace/state-service.js';
import { diffWorlds } from '../../src/policy/changes.js';
import { EMPTY_WORLD, type PolicyWorld } from '../../src/policy/model.js';

let db: Db;
let feed: ChangeFeed;
before(async () => {
  db = await openPglite('memory');
  await migrate(db);
  feed = await embeddedFeed(db);
});
after(async () => {
  await feed.close();
  await db.close();
});

const WORLD: PolicyWorld = { ...EMPTY_WORLD, catalogs: [{ name: 'lake' }], users: [{ name: 'bob' }] };

describe('embedded change feed', () => {
  it('is synchronous: a commit is heard before the writer gets control back, a rollback never', async () => {
    let heard = 0;
    feed.on('tokens', () => heard++);
    await db.transaction((tx) => notifyChange(tx, 'tokens'));
    assert.equal(heard, 1);
    await db.transaction(async (tx) => {
      await notifyChange(tx, 'tokens');
      throw new Error('roll back');
    }).catch(() => undefined);
    assert.equal(heard, 1);
    assert.equal(feed.synchronous, true);
  });

  it('puts a write made outside the state service in the next snapshot (threat: a just-in-time grant or revocation not decided on)', async () => {
    let versionReads = 0;
    const stateStore = createStateStore(db);
    const state = createStateService(
      {
        loadWorld: () => stateStore.loadWorld(),
        version: () => (versionReads++, stateStore.version()),
        applyChanges: (c, o) => stateStore.applyChanges(c, o),
        appendDecisions: async () => undefined,
      },
      { feed },
    );
    const before = await state.snapshot();
    const reads = versionReads;
    for (let i = 0; i < 5; i++) assert.equal(await state.snapshot(), before);
    assert.equal(versionReads, reads, 'no version read while nothing was committed');

    // As the access service does: its own store object, its own transaction.
    await createStateStore(db).applyChanges(diffWorlds(EMPTY_WORLD, WORLD));
    const after = await state.snapshot();
    assert.equal(after.version, before.version + 1);
    assert.deepEqual(after.world.users.map((u) => u.name), ['bob']);

    await createStateStore(db).applyChanges(diffWorlds(WORLD, { ...WORLD, users: [] }));
    assert.deepEqual((await state.snapshot()).world.users, []);
  });
});
