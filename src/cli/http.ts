/**
 * One HTTP exchange with a Steward server, on node:http / node:https rather
 * than fetch: fetch loads undici and web streams on first use, tens of
 * milliseconds that a one-call command would spend before its request leaves.
 * Bodies are small JSON documents, read whole.
 */
import type { IncomingMessage, RequestOptions } from 'node:http';

export interface HttpReply {
  readonly status: number;
  readonly ok: boolean;
  text(): Promise<string>;
}

export interface HttpRequest {
  readonly method: string;
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: string;
}

/** Sends `req` to `url`; rejects when the server cannot be reached (the caller names the server). */
export async function httpExchange(url: string, req: HttpRequest): Promise<HttpReply> {
  const target = new URL(url);
  const transport = target.protocol === 'https:' ? await import('node:https') : await import('node:http');
  const headers: Record<string, string> = { ...req.headers };
  if (req.body !== undefined) headers['content-length'] = String(Buffer.byteLength(req.body));
  const options: RequestOptions = { method: req.method, headers };
  const res = await new Promise<IncomingMessage>((resolve, reject) => {
    const r = transport.request(target, options, resolve);
    r.on('error', reject);
    r.end(req.body);
  });
  const chunks: Buffer[] = [];
  for await (const c of res) chunks.push(c as Buffer);
  const text = Buffer.concat(chunks).toString('utf8');
  const status = res.statusCode ?? 0;
  return { status, ok: status >= 200 && status < 300, text: async () => text };
}
