/*
 * `tapbridge ctl conntrack` pages through the table (src/cli/ctl.ts fetchConntrack): calls
 * of at most 1000 rows, each starting where the last one's `next` said, until `next` is
 * null; --limit N stops after N rows. The page source here behaves like the data plane's
 * `conntrack` method (src/dataplane/api.ts): flows by id, `next` = last id + 1 when the page
 * is full, else null. Flow ids have gaps, as in the real table.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CONNTRACK_PAGE, fetchConntrack, type ConntrackPage } from '../../src/cli/ctl.js';

/** A fake table with flows at the given ids; records every call. */
function table(ids: number[]): { getPage: (limit: number, from: number) => Promise<ConntrackPage>; calls: { limit: number; from: number }[] } {
  const calls: { limit: number; from: number }[] = [];
  const getPage = async (limit: number, from: number): Promise<ConntrackPage> => {
    calls.push({ limit, from });
    const page = ids.filter((id) => id >= from).slice(0, limit);
    const flows = page.map((id) => ({ id, protoName: 'udp', state: 'UNREPLIED', secondsLeft: 30, original: `id=${id}`, reply: '-', packetsOrig: 1, bytesOrig: 64, packetsReply: 0, bytesReply: 0, flags: [] }));
    return { size: ids.length, max: 65536, flows, next: page.length === limit ? page[page.length - 1] + 1 : null };
  };
  return { getPage, calls };
}

const ids = (n: number, gap = 3) => Array.from({ length: n }, (_, i) => i * gap + 1);
const idsOf = (p: ConntrackPage) => p.flows.map((f) => Number(f.original.slice(3)));

test('every flow, in pages of at most 1000 rows, each from the last page\'s next', async () => {
  const all = ids(2500);
  const t = table(all);
  const r = await fetchConntrack(t.getPage);
  assert.deepEqual(idsOf(r), all);
  assert.equal(r.next, null);
  assert.equal(r.size, 2500);
  assert.ok(t.calls.every((c) => c.limit <= CONNTRACK_PAGE), JSON.stringify(t.calls));
  assert.deepEqual(t.calls.map((c) => c.from), [0, all[999] + 1, all[1999] + 1]);
});

test('a table of exactly one page needs a second call that finds nothing', async () => {
  const t = table(ids(1000));
  const r = await fetchConntrack(t.getPage);
  assert.equal(r.flows.length, 1000);
  assert.equal(t.calls.length, 2);
  assert.equal(r.next, null);
});

test('--limit N shows at most N (and says where more would start)', async () => {
  const all = ids(2500);
  const t = table(all);
  const r = await fetchConntrack(t.getPage, 1500);
  assert.deepEqual(idsOf(r), all.slice(0, 1500));
  assert.deepEqual(t.calls.map((c) => c.limit), [1000, 500]);
  assert.equal(r.next, all[1499] + 1);
  const small = table(all);
  const s = await fetchConntrack(small.getPage, 10);
  assert.equal(s.flows.length, 10);
  assert.deepEqual(small.calls, [{ limit: 10, from: 0 }]);
});

test('an empty table: one call, no flows', async () => {
  const t = table([]);
  const r = await fetchConntrack(t.getPage);
  assert.deepEqual(r.flows, []);
  assert.equal(t.calls.length, 1);
});

test('a page source that does not advance is an error, not an endless loop', async () => {
  const stuck = async (): Promise<ConntrackPage> => ({ size: 1, max: 1, flows: [], next: 0 });
  await assert.rejects(fetchConntrack(stuck), /did not advance/);
});
