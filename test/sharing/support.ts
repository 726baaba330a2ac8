/**
 * Two workspaces that trust each other, producer and consumer, each behind a
 * real HTTP server, and a hostile server that stands where the producer's URL
 * points (for forged and replayed feeds).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { SignJWT, type CryptoKey } from 'jose';
import { startTestServer, type TestServer } from '../support/server.js';

export interface Pair {
  readonly producer: TestServer;
  readonly consumer: TestServer;
  readonly producerKey: string;
  readonly consumerKey: string;
  close(): Promise<void>;
}

export async function ok(server: TestServer, method: string, path: string, body?: unknown): Promise<any> {
  const r = await server.call(method, path, body);
  if (r.status >= 300) throw new Error(`${method} ${path} answered ${r.status}: ${JSON.stringify(r.json)}`);
  return r.json;
}

/**
 * A demo producer and an empty consumer; the consumer pulls from the producer as `producer`, the producer knows it as
 * `consumer` (with no region). `producerRegion` puts the producer's workspace, and so its lake, in a region.
 */
export async function startPair(options: { readonly producerRegion?: string } = {}): Promise<Pair> {
  const region = options.producerRegion;
  const producer = await startTestServer(region === undefined ? {} : { config: () => ({ region }) });
  const consumer = await startTestServer();
  try {
    await ok(producer, 'POST', '/v1/demo', {});
    const producerKey = (await ok(producer, 'GET', '/v1/shares/identity')).publicKey as string;
    const consumerKey = (await ok(consumer, 'GET', '/v1/shares/identity')).publicKey as string;
    await ok(producer, 'POST', '/v1/shares/peers', { name: 'consumer', publicKey: consumerKey });
    await ok(consumer, 'POST', '/v1/shares/peers', { name: 'producer', publicKey: producerKey, url: producer.url });
    return {
      producer,
      consumer,
      producerKey,
      consumerKey,
      close: async () => {
        await consumer.close();
        await producer.close();
      },
    };
  } catch (e) {
    await consumer.close();
    await producer.close();
    throw e;
  }
}

export interface HostileServer {
  readonly url: string;
  close(): Promise<void>;
}

/** An HTTP server answering every request with `answer` (status and JSON body). */
export async function startHostile(answer: (req: http.IncomingMessage) => Promise<{ status: number; json: unknown }>): Promise<HostileServer> {
  const server = http.createServer((req, res) => {
    answer(req)
      .then(({ status, json }) => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(json));
      })
      .catch((e: unknown) => {
        res.writeHead(500, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: { message: String(e) } }));
      });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** A share token as the pair's consumer signs it, or with any other key and claims (forgeries). */
export async function shareToken(pair: Pair, opts: { share: string; key?: CryptoKey; iss?: string; aud?: string }): Promise<string> {
  const key = opts.key ?? (await pair.consumer.ws.services.sharing?.identity.get())?.privateKey;
  if (key === undefined) throw new Error('the consumer has no identity');
  const iat = Math.floor(Date.now() / 1000);
  return new SignJWT({ share: opts.share })
    .setProtectedHeader({ alg: 'EdDSA', typ: 'steward-share+jwt' })
    .setIssuer(opts.iss ?? pair.consumerKey)
    .setAudience(opts.aud ?? pair.producerKey)
    .setIssuedAt(iat)
    .setExpirationTime(iat + 60)
    .sign(key);
}

/** A workspace-to-workspace call at the producer with `bearer` (GET without a body, POST with one). */
export async function atProducer(pair: Pair, path: string, bearer: string, body?: unknown): Promise<{ status: number; json: any }> {
  const res = await fetch(`${pair.producer.url}${path}`, {
    method: body === undefined ? 'GET' : 'POST',
    headers: { authorization: `Bearer ${bearer}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: res.status, json: await res.json() };
}
