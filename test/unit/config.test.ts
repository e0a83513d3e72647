/*
 * Configuration validation (src/config/load.ts, schema.ts): a valid config passes with its
 * defaults filled in; every kind of error is reported with the path of the field, all
 * problems of a document at once, and files are read as YAML or JSON.
 */
import { defaultMacLimitPerPort } from '../../src/control/spec.js';
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, loadConfigFile, loadRunConfig, validateConfig } from '../../src/config/load.js';
import { DEFAULT_LAB, ROOTLESS_LAB } from '../../src/lab/default-lab.js';

/** A small but complete valid document (JSON-shaped, as a parsed YAML file would be). */
function valid(): Record<string, any> {
  return {
    instance: 'unit',
    namespace: { name: 'unit-host', create: true },
    bridges: [
      {
        name: 'br0',
        gateway: { address: '10.100.0.1/24' },
        static: [{ mac: '02:00:00:00:00:99', port: 'red' }],
        ports: [
          { type: 'namespace', name: 'red', namespace: 'red', addresses: ['10.100.0.2/24'], defaultRoute: '10.100.0.1' },
          { type: 'namespace', name: 'blue', namespace: 'blue', mac: '02:00:00:00:00:03', addresses: ['10.100.0.3/24'] },
          { type: 'tap', name: 'host', ifname: 'tb0', addresses: ['10.100.0.254/24'] },
        ],
      },
      {
        name: 'br1',
        ports: [{ type: 'namespace', name: 'green', namespace: 'green', addresses: ['198.51.100.2/24'] }],
      },
    ],
    uplink: { interface: 'eth0', address: '203.0.113.2/24', gateway: '203.0.113.1' },
    nat: { publish: [{ proto: 'tcp', port: 8000, to: '10.100.0.2' }] },
  };
}

/** Validate `doc` expecting failure; returns the problem lines. */
function problems(doc: unknown): string[] {
  try {
    validateConfig(doc, 'test.yaml');
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected ConfigError, got ${String(err)}`);
    assert.ok(err.problems.length > 0);
    assert.match(err.message, /^invalid configuration \(test\.yaml\):/);
    for (const p of err.problems) assert.ok(err.message.includes(p), 'the message lists every problem');
    return err.problems;
  }
  assert.fail('the config was accepted');
}

/** Exactly one problem, for exactly `path`, whose message matches `re`. */
function expectOne(doc: unknown, path: string, re: RegExp): void {
  const ps = problems(doc);
  assert.equal(ps.length, 1, `expected one problem, got:\n  ${ps.join('\n  ')}`);
  assert.ok(ps[0].startsWith(`${path}: `), `expected the problem at ${path}, got: ${ps[0]}`);
  assert.match(ps[0].slice(path.length + 2), re);
}

/** A ConfigError with (at least) a problem for `path` matching `re`. */
function expectProblem(doc: unknown, path: string, re: RegExp): void {
  const ps = problems(doc);
  const mine = ps.find((p) => p.startsWith(`${path}: `));
  assert.ok(mine !== undefined, `expected a problem at ${path}, got:\n  ${ps.join('\n  ')}`);
  assert.match(mine.slice(path.length + 2), re);
}

function mutate(fn: (c: Record<string, any>) => void): Record<string, any> {
  const c = valid();
  fn(c);
  return c;
}

describe('valid configurations', () => {
  test('the sample passes and gets its defaults', () => {
    const cfg = validateConfig(valid(), 'test.yaml');
    const br0 = cfg.bridges[0];
    assert.equal(br0.agingSeconds, 300);
    assert.equal(br0.macTableSize, 8192);
    assert.equal(br0.macLimitPerPort, undefined, 'not given: the data plane gets the default share');
    assert.equal(defaultMacLimitPerPort(br0.macTableSize), br0.macTableSize / 4, 'a quarter of the table per port');
    assert.equal(br0.macTableFull, 'evict');
    const red = br0.ports[0];
    assert.equal(red.type, 'namespace');
    if (red.type === 'namespace') {
      assert.equal(red.ifname, 'eth0');
      assert.equal(red.createNamespace, true);
      assert.equal(red.mtu, 1500);
      assert.equal(red.offload, true);
    }
    assert.equal(cfg.uplink?.type === 'packet' ? cfg.uplink.mac : undefined, 'own');
    assert.deepEqual(cfg.nat?.portRange, [32768, 60999]);
    assert.deepEqual(cfg.routes, []);
  });

  test('the embedded default lab is valid', () => {
    const cfg = validateConfig(structuredClone(DEFAULT_LAB), 'default');
    assert.equal(cfg.instance, 'lab');
    assert.equal(cfg.bridges[0].ports.length, 3);
  });

  test('a minimal pure switch is valid', () => {
    const cfg = validateConfig({ bridges: [{ name: 'br0', ports: [{ type: 'namespace', name: 'a', namespace: 'a' }] }] });
    assert.equal(cfg.instance, 'tapbridge');
    assert.equal(cfg.bridges[0].gateway, undefined);
  });
});

describe('every error names its field', () => {
  test('bad MAC', () => {
    expectOne(mutate((c) => (c.bridges[0].ports[1].mac = '02:00:00:00:00')), 'bridges[0].ports[1].mac', /not a MAC address \(expected aa:bb:cc:dd:ee:ff\)/);
    expectOne(mutate((c) => (c.bridges[0].static[0].mac = 'zz:00:00:00:00:99')), 'bridges[0].static[0].mac', /not a MAC address/);
    expectOne(mutate((c) => (c.bridges[0].gateway.mac = '02-74-62-00-00-01x')), 'bridges[0].gateway.mac', /not a MAC address/);
  });

  test('bad CIDR', () => {
    for (const bad of ['10.100.0.300/24', '10.100.0.2/33', '10.100.0.2', '10.100.0/24', 'red/24', '2001:db8::1', '2001:db8::1/129', '2001:db8:::1/64', 'fe80::1%eth0/64'])
      expectOne(mutate((c) => (c.bridges[0].ports[1].addresses = [bad])), 'bridges[0].ports[1].addresses[0]', /not an IPv4 or IPv6 address with prefix length/);
  });

  // Cross-field checks read addresses of other fields: a malformed one must still be
  // reported by its path, never crash validation (exit 2 with the field, not exit 1).
  test('malformed addresses that cross-field rules look at are reported, not thrown', () => {
    expectProblem(mutate((c) => (c.bridges[0].ports[0].addresses = ['10.100.0.300/24'])), 'bridges[0].ports[0].addresses[0]', /not an IPv4 or IPv6 address with prefix length/);
    expectProblem(mutate((c) => (c.bridges[0].gateway.address = '10.100.0.1')), 'bridges[0].gateway.address', /prefix length/);
    expectProblem(mutate((c) => (c.uplink.gateway = '203.0.113.256')), 'uplink.gateway', /not an IPv4 or IPv6 address/);
    expectProblem(mutate((c) => (c.uplink.address = '203.0.113.2')), 'uplink.address', /prefix length/);
    expectProblem(mutate((c) => (c.nat.publish[0].to = '10.100.0')), 'nat.publish[0].to', /not an IPv4 or IPv6 address/);
    expectProblem(mutate((c) => (c.bridges[0].ports[0].defaultRoute = '10.100.0.x')), 'bridges[0].ports[0].defaultRoute', /not an IPv4 or IPv6 address/);
    expectProblem(mutate((c) => (c.routes = [{ to: '198.51.100.0/24', via: '10.100.0.300' }])), 'routes[0].via', /not an IPv4 or IPv6 address/);
  });

  test('duplicate port names, within and across bridges', () => {
    expectOne(mutate((c) => (c.bridges[0].ports[1].name = 'red')), 'bridges[0].ports[1].name', /duplicate port name 'red'.*bridges\[0\]\.ports\[0\]/);
    expectOne(mutate((c) => (c.bridges[1].ports[0].name = 'host')), 'bridges[1].ports[0].name', /duplicate port name 'host'/);
  });

  test('duplicate bridge names', () => {
    expectOne(mutate((c) => (c.bridges[1].name = 'br0')), 'bridges[1].name', /duplicate bridge name 'br0'/);
  });

  test('unknown fields, at any level', () => {
    expectOne(mutate((c) => (c.colour = 'red')), '(top level)', /unknown field 'colour'/);
    expectOne(mutate((c) => (c.bridges[0].agingSecs = 10)), 'bridges[0]', /unknown field 'agingSecs'/);
    expectOne(mutate((c) => (c.bridges[0].ports[2].namespace = 'x')), 'bridges[0].ports[2]', /unknown field 'namespace'/);
    expectOne(mutate((c) => (c.nat.publish[0].dest = 'x')), 'nat.publish[0]', /unknown field 'dest'/);
  });

  test('a static entry naming a port that does not exist (or lives on another bridge)', () => {
    expectOne(mutate((c) => (c.bridges[0].static[0].port = 'ghost')), 'bridges[0].static[0].port', /no port named 'ghost' in bridge 'br0'/);
    expectOne(mutate((c) => (c.bridges[0].static[0].port = 'green')), 'bridges[0].static[0].port', /no port named 'green' in bridge 'br0'/);
  });

  test('unknown port type', () => {
    expectOne(mutate((c) => (c.bridges[0].ports[1].type = 'veth')), 'bridges[0].ports[1].type', /unknown port type \(expected namespace, tap or packet\)/);
    expectOne(mutate((c) => delete c.bridges[0].ports[1].type), 'bridges[0].ports[1].type', /unknown port type/);
  });

  test('publish target outside every bridge subnet', () => {
    expectOne(mutate((c) => (c.nat.publish[0].to = '10.9.9.9')), 'nat.publish[0].to', /10\.9\.9\.9 is not inside any bridge's gateway subnet/);
    // br1 has no gateway: its addresses do not count as a gateway subnet
    expectOne(mutate((c) => (c.nat.publish[0].to = '198.51.100.2')), 'nat.publish[0].to', /not inside any bridge's gateway subnet/);
  });

  test('missing required fields and wrong types', () => {
    expectOne(mutate((c) => delete c.bridges[0].name), 'bridges[0].name', /required/);
    expectOne(mutate((c) => (c.bridges[0].macTableSize = 'big')), 'bridges[0].macTableSize', /.+/);
    expectOne(mutate((c) => ((c.bridges[0].ports = []), (c.bridges[0].static = []))), 'bridges[0].ports', /at least one port/);
    expectOne(mutate((c) => (c.bridges[0].ports[0].mtu = 20)), 'bridges[0].ports[0].mtu', /MTU below 68/);
  });

  test('cross-field rules', () => {
    expectOne(mutate((c) => (c.bridges[0].ports[0].defaultRoute = '10.200.0.1')), 'bridges[0].ports[0].defaultRoute', /not inside any of the port's addresses/);
    expectOne(mutate((c) => (c.bridges[1].gateway = { address: '10.100.0.129/25' })), 'bridges[1].gateway.address', /overlaps/);
    expectOne(mutate((c) => (c.bridges[0].ports[1].namespace = 'unit-host')), 'bridges[0].ports[1].namespace', /tapbridge's own namespace/);
    expectOne(mutate((c) => delete c.uplink), 'nat', /NAT needs an uplink/);
    expectOne(mutate((c) => (c.nat.portRange = [2000, 1000])), 'nat.portRange', /first port is above the last/);
  });

  test('all problems of a document are reported together', () => {
    const ps = problems(
      mutate((c) => {
        c.bridges[0].ports[1].mac = 'nope';
        c.bridges[0].ports[2].name = 'red';
        c.bridges[0].static[0].port = 'ghost';
        c.nat.publish[0].to = '10.9.9.9';
      }),
    );
    for (const path of ['bridges[0].ports[1].mac', 'bridges[0].ports[2].name', 'bridges[0].static[0].port', 'nat.publish[0].to'])
      assert.ok(ps.some((p) => p.startsWith(`${path}: `)), `missing a problem for ${path} in:\n  ${ps.join('\n  ')}`);
  });

  test('a document that is not an object', () => {
    assert.ok(problems('bridges').length >= 1);
    assert.ok(problems(null).length >= 1);
    expectOne({}, 'bridges', /required/);
  });
});

describe('files', () => {
  const dir = mkdtempSync(join(tmpdir(), `tbt-${process.pid}-unit-config-`));
  const write = (name: string, text: string) => {
    const f = join(dir, name);
    writeFileSync(f, text);
    return f;
  };
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('YAML and JSON files load', () => {
    const y = write('ok.yaml', 'instance: y\nbridges:\n  - name: br0\n    ports:\n      - {type: namespace, name: red, namespace: red, addresses: [10.100.0.2/24]}\n');
    assert.equal(loadConfigFile(y).instance, 'y');
    const j = write('ok.json', JSON.stringify(valid()));
    assert.equal(loadConfigFile(j).bridges.length, 2);
  });

  test('errors in a file carry the file name and the field path', () => {
    const f = write('bad.yaml', 'bridges:\n  - name: br0\n    ports:\n      - {type: namespace, name: red, namespace: red}\n      - {type: namespace, name: blue, namespace: blue, mac: "02:00"}\n');
    assert.throws(
      () => loadConfigFile(f),
      (err: unknown) =>
        err instanceof ConfigError &&
        err.source === f &&
        err.problems.length === 1 &&
        err.problems[0].startsWith('bridges[0].ports[1].mac: not a MAC address') &&
        err.message.includes(f),
    );
  });

  test('unreadable and unparsable files are ConfigErrors too', () => {
    assert.throws(() => loadConfigFile(join(dir, 'missing.yaml')), (e: unknown) => e instanceof ConfigError && /cannot read/.test(e.problems[0]));
    const f = write('broken.yaml', 'bridges: [\n  - name: br0\n  ports: {\n');
    assert.throws(() => loadConfigFile(f), (e: unknown) => e instanceof ConfigError && /not valid YAML\/JSON/.test(e.problems[0]));
  });
});

describe('IPv6 in the config', () => {
  /** valid() made dual-stack: gateway, ports, uplink and a published port in both families. */
  function dual(): Record<string, any> {
    const c = valid();
    c.bridges[0].gateway.address = ['10.100.0.1/24', '2001:db8:100::1/64'];
    c.bridges[0].ports[0].addresses = ['10.100.0.2/24', '2001:db8:100::2/64'];
    c.bridges[0].ports[0].defaultRoute = ['10.100.0.1', '2001:db8:100::1'];
    c.uplink.address = ['203.0.113.2/24', '2001:db8:113::2/64'];
    c.uplink.gateway = ['203.0.113.1', '2001:db8:113::1'];
    c.nat.publish.push({ proto: 'tcp', port: 8000, to: '2001:db8:100::2' });
    return c;
  }

  test('a dual-stack config is valid; one address reads as a list; RA defaults filled in', () => {
    const cfg = validateConfig(dual());
    assert.deepEqual(cfg.bridges[0].gateway!.address, ['10.100.0.1/24', '2001:db8:100::1/64']);
    assert.deepEqual(cfg.bridges[0].gateway!.ra, { enabled: true, routerLifetime: 1800, interval: 200, validLifetime: 86400, preferredLifetime: 14400, dns: [] });
    const up = validateConfig(valid()).uplink;
    assert.deepEqual(up?.type === 'packet' ? up.address : undefined, ['203.0.113.2/24']);
    const v6only = dual();
    v6only.bridges[0].gateway.address = '2001:db8:100::1/64';
    v6only.bridges[0].ports[0].defaultRoute = 'fe80::1';
    v6only.nat.publish = [{ proto: 'udp', port: 53, to: '2001:db8:100::2' }];
    assert.equal(validateConfig(v6only).bridges[0].gateway!.address.length, 1);
    assert.equal(validateConfig(DEFAULT_LAB).nat!.publish.length, 4, 'the default lab is dual-stack');
  });

  test('one address per family; families must match; errors name the field', () => {
    expectOne(mutate((c) => (c.bridges[0].gateway.address = ['10.100.0.1/24', '10.101.0.1/24'])), 'bridges[0].gateway.address', /two IPv4 entries/);
    const d = dual();
    d.bridges[0].ports[0].defaultRoute = ['2001:db8:100::1', '2001:db8:100::5'];
    expectOne(d, 'bridges[0].ports[0].defaultRoute', /two IPv6 entries/);
    const r = dual();
    r.routes = [{ to: '2001:db8:200::/48', via: '10.100.0.9' }];
    expectOne(r, 'routes[0].via', /not of the destination's family/);
    const p = valid();
    p.nat.publish.push({ proto: 'tcp', port: 8001, to: '2001:db8:100::2' });
    const ps = problems(p);
    assert.ok(ps.some((x) => x.startsWith('nat.publish[1].to: ') && /not inside any bridge's gateway subnet/.test(x)), ps.join('\n'));
    const noV6Uplink = dual();
    noV6Uplink.uplink.address = '203.0.113.2/24';
    noV6Uplink.uplink.gateway = '203.0.113.1';
    expectOne(noV6Uplink, 'nat.publish[1].to', /needs an IPv6 uplink address/);
    const gw = dual();
    gw.uplink.gateway = ['203.0.113.1', '2001:db8:999::1'];
    expectOne(gw, 'uplink.gateway', /2001:db8:999::1 is not inside 2001:db8:113::2\/64/);
    const overlap = dual();
    overlap.bridges[1].gateway = { address: '2001:db8:100:0:8000::1/65' };
    expectOne(overlap, 'bridges[1].gateway.address', /overlaps/);
    expectOne(mutate((c) => (c.bridges[0].ports[0].security = { ipv6: ['10.0.0.1'] })), 'bridges[0].ports[0].security.ipv6[0]', /not an IPv6 address/);
  });

  test('routed prefixes must be a bridge prefix (or inside one); the same port may be published once per family', () => {
    const d = dual();
    d.nat.routed = ['2001:db8:100::/64'];
    assert.deepEqual(validateConfig(d).nat!.routed, ['2001:db8:100::/64']);
    d.nat.routed = ['2001:db8:777::/64'];
    expectOne(d, 'nat.routed[0]', /not a bridge's IPv6 prefix/);
    const twice = dual();
    twice.nat.publish.push({ proto: 'tcp', port: 8000, to: '2001:db8:100::3' });
    expectOne(twice, 'nat.publish[2].port', /tcp\/8000 is published twice/);
  });
});

describe('poll options', () => {
  test('busy poll is off by default; busyMicros and cpus are taken; bad values name the field', () => {
    assert.deepEqual(validateConfig(valid(), 'test.yaml').poll, { busyMicros: 0 });
    assert.deepEqual(validateConfig(mutate((c) => (c.poll = { busyMicros: 50, cpus: [0] })), 'test.yaml').poll, { busyMicros: 50, cpus: [0] });
    expectOne(mutate((c) => (c.poll = { busyMicros: 5000 })), 'poll.busyMicros', /at most 1000/);
    expectOne(mutate((c) => (c.poll = { busyMicros: -1 })), 'poll.busyMicros', />=\s*0|too small/i);
    expectOne(mutate((c) => (c.poll = { cpus: [4096] })), 'poll.cpus[0]', /no such CPU here/);
    expectOne(mutate((c) => (c.poll = { cpus: [] })), 'poll.cpus', /at least one CPU/);
    expectOne(mutate((c) => (c.poll = { spin: true })), 'poll', /spin/);
  });
});

describe('gateway.dhcp, gateway.dns and addresses: dhcp', () => {
  const withDhcp = (fn: (c: Record<string, any>) => void = () => {}) =>
    mutate((c) => {
      c.bridges[0].gateway.dhcp = { pool: { start: '10.100.0.100', end: '10.100.0.150' }, static: [{ mac: '02:00:00:00:00:42', address: '10.100.0.42' }] };
      c.bridges[0].gateway.dns = { domain: 'lab.test', upstreams: ['203.0.113.1', '203.0.113.9:5353'] };
      c.bridges[0].ports[1].addresses = 'dhcp';
      fn(c);
    });

  test('a valid server, resolver and DHCP port, with their defaults', () => {
    const cfg = validateConfig(withDhcp(), 'test.yaml');
    const g = cfg.bridges[0].gateway!;
    assert.equal(g.dhcp!.leaseTime, 3600);
    assert.equal(g.dhcp!.maxClients, 1024);
    assert.deepEqual([g.dns!.enabled, g.dns!.cacheSize, g.dns!.timeoutMs], [true, 1024, 2000]);
    assert.equal(cfg.bridges[0].ports[1].type === 'namespace' && cfg.bridges[0].ports[1].addresses, 'dhcp');
  });

  test('errors name the field', () => {
    expectOne(withDhcp((c) => (c.bridges[0].gateway.dhcp.pool.start = '10.99.255.5')), 'bridges[0].gateway.dhcp.pool.start', /not inside the gateway subnet/);
    expectOne(withDhcp((c) => (c.bridges[0].gateway.dhcp.pool.start = '10.100.0.1')), 'bridges[0].gateway.dhcp.pool.start', /gateway's own address/);
    expectOne(withDhcp((c) => (c.bridges[0].gateway.dhcp.pool.end = '10.100.0.255')), 'bridges[0].gateway.dhcp.pool.end', /broadcast address/);
    expectOne(withDhcp((c) => (c.bridges[0].gateway.dhcp.pool = { start: '10.100.0.150', end: '10.100.0.100' })), 'bridges[0].gateway.dhcp.pool.end', /before pool.start/);
    expectOne(withDhcp((c) => c.bridges[0].gateway.dhcp.static.push({ mac: '02:00:00:00:00:42', address: '10.100.0.43' })), 'bridges[0].gateway.dhcp.static[1].mac', /duplicate MAC/);
    expectOne(withDhcp((c) => (c.bridges[0].gateway.dhcp.static[0].address = '10.100.7.1')), 'bridges[0].gateway.dhcp.static[0].address', /not inside/);
    expectOne(withDhcp((c) => (c.bridges[0].gateway.dhcp.leaseTime = 5)), 'bridges[0].gateway.dhcp.leaseTime', /60/);
    expectOne(withDhcp((c) => (c.bridges[0].gateway.dns.upstreams = ['resolver.example'])), 'bridges[0].gateway.dns.upstreams[0]', /not an IPv4 address/);
    expectOne(withDhcp((c) => (c.bridges[0].gateway.dns.domain = 'bad..domain')), 'bridges[0].gateway.dns.domain', /not a domain name/);
    expectOne(withDhcp((c) => (c.bridges[0].ports[1].defaultRoute = '10.100.0.1')), 'bridges[0].ports[1].defaultRoute', /takes its default route from DHCP/);
    expectOne(withDhcp((c) => (c.bridges[0].ports[1].addresses = 'dhcpv6')), 'bridges[0].ports[1].addresses', /./);
    expectOne(withDhcp((c) => delete c.bridges[0].gateway.dhcp), 'bridges[0].ports[1].addresses', /no gateway.dhcp server/);
    expectProblem(withDhcp((c) => (c.bridges[0].gateway.address = '2001:db8:100::1/64')), 'bridges[0].gateway.dhcp', /needs an IPv4 gateway address/);
  });
});

describe('run --publish and the rootless default (loadRunConfig)', () => {
  const lab = { doc: DEFAULT_LAB, source: 'embedded default lab' };

  test('the embedded rootless default is valid: a socket uplink, 8000 on 127.0.0.1 to red, no namespace of its own', () => {
    const cfg = loadRunConfig(undefined, { doc: ROOTLESS_LAB, source: 'embedded rootless default' });
    assert.equal(cfg.uplink?.type, 'socket');
    assert.equal(cfg.namespace, undefined);
    assert.deepEqual(
      cfg.nat!.publish.map((p) => `${p.hostAddress}:${p.port}/${p.proto}=${p.to}`),
      ['127.0.0.1:8000/tcp=10.100.0.2', '127.0.0.1:8000/udp=10.100.0.2'],
    );
  });

  test('SPECs are appended to nat.publish, host address included', () => {
    const cfg = loadRunConfig(undefined, lab, ['8080/tcp=10.100.0.3:80', '9000-9001/udp=10.100.0.2']);
    assert.equal(cfg.nat!.publish.length, DEFAULT_LAB.nat.publish.length + 2);
    assert.deepEqual(cfg.nat!.publish.at(-2), { proto: 'tcp', port: 8080, to: '10.100.0.3', toPort: 80 });
    assert.deepEqual(cfg.nat!.publish.at(-1), { proto: 'udp', port: 9000, portEnd: 9001, to: '10.100.0.2' });
    const rootless = loadRunConfig(undefined, { doc: ROOTLESS_LAB, source: 'rootless' }, ['198.51.100.1:8001=10.100.0.2:8000']);
    assert.deepEqual(rootless.nat!.publish.at(-1), { proto: 'tcp', port: 8001, to: '10.100.0.2', toPort: 8000, hostAddress: '198.51.100.1' });
  });

  test('nat: {} is made when the config has none', () => {
    const { nat: _nat, ...withoutNat } = ROOTLESS_LAB;
    const cfg = loadRunConfig(undefined, { doc: withoutNat, source: 'no nat' }, ['8001=10.100.0.2']);
    assert.deepEqual(cfg.nat!.publish.map((p) => p.port), [8001]);
  });

  test('a SPEC that does not parse, or clashes, is a config error naming the flag', () => {
    assert.throws(
      () => loadRunConfig(undefined, lab, ['nonsense']),
      (e: unknown) => e instanceof ConfigError && /--publish: cannot parse 'nonsense'/.test(e.message),
    );
    assert.throws(
      () => loadRunConfig(undefined, lab, ['8000/tcp=10.100.0.3']),
      (e: unknown) => e instanceof ConfigError && /\+ --publish/.test(e.message) && /nat\.publish\[4\]\.port.*published twice/.test(e.message),
    );
  });
});
