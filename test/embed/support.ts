/** A demo workspace (with its AnyHealth dashboard), for the embed tests. */
import { startTestServer, type TestServer } from '../support/server.js';
import { REVENUE_DASHBOARD } from '../../src/demo/anyhealth.js';

export const ORIGIN = 'https://app.anyhealth.example';

export async function startEmbedServer(): Promise<TestServer> {
  const server = await startTestServer();
  try {
    const demo = await server.call('POST', '/v1/demo', {});
    if (demo.status !== 200) throw new Error(`demo failed: ${JSON.stringify(demo.json)}`);
    // The demo adds the dashboard; it must be the one of src/demo/anyhealth.ts.
    const got = await server.call('GET', '/v1/embed/dashboards/revenue');
    if (got.status !== 200 || got.json.dashboard.title !== REVENUE_DASHBOARD.title) throw new Error(`no demo dashboard: ${JSON.stringify(got.json)}`);
    return server;
  } catch (e) {
    await server.close();
    throw e;
  }
}

export async function mint(server: TestServer, body: Record<string, unknown>, token?: string): Promise<{ status: number; json: any }> {
  return server.call('POST', '/v1/embed/tokens', { dashboard: 'revenue', user: 'NorthAdmin', tags: { hospital: 'North Hospital', region: '*' }, origins: [ORIGIN], ...body }, token);
}

/** GET the embed page without credentials, as a browser would. */
export async function openPage(server: TestServer, dashboard: string, token: string): Promise<Response> {
  return fetch(`${server.url}/embed/dashboards/${dashboard}?token=${encodeURIComponent(token)}`);
}

/** The JSON the page carries (its rows), parsed back from the HTML. */
export function pageData(html: string): { data: Record<string, { columns: string[]; rows: unknown[][] }>; user: string } {
  const m = /<script type="application\/json" id="steward-data">([\s\S]*?)<\/script>/.exec(html);
  if (m === null) throw new Error('no data in the page');
  return JSON.parse(m[1] as string);
}
