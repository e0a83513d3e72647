/*
 * The table of system tools the integration tests use (test/helpers/tools.ts): a missing
 * tool is named with its apt package, requireTools() fails loudly (never skips), and the
 * table knows every tool the suites ask for.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TOOLS, describeTools, missingTools, requireTools, toolPath } from '../helpers/tools.js';

test('a missing tool is named with its apt package; requireTools throws', () => {
  const missing = missingTools(['no-such-tool-tbx']);
  assert.deepEqual(missing.map((t) => t.name), ['no-such-tool-tbx']);
  assert.equal(describeTools([{ name: 'tshark', apt: 'tshark' }, { name: 'tracepath', apt: 'iputils-tracepath' }]), 'tshark (apt: tshark), tracepath (apt: iputils-tracepath)');
  assert.throws(() => requireTools(['no-such-tool-tbx']), /missing system tools: no-such-tool-tbx \(apt: \?\)/);
});

test('the table has one apt package for every tool, and sh is found where tools are looked for', () => {
  for (const t of TOOLS) assert.match(t.apt, /^[a-z0-9.+-]+$/, t.name);
  assert.equal(new Set(TOOLS.map((t) => t.name)).size, TOOLS.length, 'no tool twice');
  for (const n of ['ping', 'arping', 'iperf3', 'curl', 'tcpdump', 'tshark', 'socat', 'traceroute', 'tracepath', 'nsenter', 'ethtool', 'python3-scapy'])
    assert.ok(TOOLS.some((t) => t.name === n), `${n} is in the table`);
  assert.ok(toolPath('sh') !== undefined);
});
