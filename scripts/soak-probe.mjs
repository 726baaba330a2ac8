// Loaded into the soak's `steward serve` with `node --expose-gc --import`:
// answers the parent's 'memory' message with the heap after a full
// collection (so the soak's slope is the live set, not garbage) and the RSS.
// Nothing else: the server under test is the built binary as shipped.
if (typeof process.send === 'function') {
  process.on('message', (m) => {
    if (m !== 'memory') return;
    if (typeof globalThis.gc === 'function') globalThis.gc();
    const u = process.memoryUsage();
    process.send({ heapUsed: u.heapUsed, rss: u.rss });
  });
  // The channel must not keep the server alive after its own shutdown.
  process.channel?.unref();
}
