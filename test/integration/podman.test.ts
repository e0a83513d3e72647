/*
 * Podman end to end: Debian's podman, rootful, with its CNI network backend, runs busybox
 * containers on a network `tbnet` of type tapbridge (host-local IPAM on 10.100.0.100-150 of
 * the lab's br0, the gateway's DNS as the containers' resolver) against a running lab
 * (nat-lab.ts). Podman is isolated (test/helpers/podman.ts): its own storage, run state,
 * containers.conf and network configs in a temp dir. A container pings the gateway and
 * wan; a second one resolves the first by its container name at the gateway DNS and pings
 * it; a container published with -p 8080:80 serves a file to wan through tapbridge's NAT,
 * and `podman stop` takes its port and its published port away.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { NatLab } from '../helpers/nat-lab.js';
import { announceSkip, describeRun, integrationSkipReason, waitFor } from '../helpers/sys.js';
import { cleanupAll } from '../helpers/tapbridge.js';
import { requireTools } from '../helpers/tools.js';
import { IMAGE, IsolatedPodman, WWW_TEXT } from '../helpers/podman.js';
import { apiRequest } from '../../src/control/client.js';

const SKIP = integrationSkipReason();
if (SKIP !== null) announceSkip('Podman integration tests', SKIP);

interface RuntimePortJson {
  name: string;
  labels: Record<string, string>;
}

describe('Podman with the tapbridge CNI network (rootful, CNI backend)', { skip: SKIP ?? false, timeout: 150_000 }, () => {
  const lab = new NatLab({ tag: 'pm', noBlue: true, gatewayExtra: { dns: { domain: 'pm.test', upstreams: ['203.0.113.1'] } } });
  let podman: IsolatedPodman | null = null;
  let c1Id = '';
  const pm = () => podman!;
  const runtimePorts = () => lab.ctl<RuntimePortJson[]>('ports', 'runtime');
  /** A container's address on tbnet. */
  const addressOf = async (name: string) => (await pm().check(['inspect', '--format', '{{(index .NetworkSettings.Networks "tbnet").IPAddress}}', name])).trim();

  before(async () => {
    requireTools(['ip', 'curl', 'timeout', 'tar', 'podman', 'conmon', 'runc', 'busybox-static', 'cni-host-local']);
    await lab.start();
    podman = new IsolatedPodman();
    await pm().installPlugin();
    // host-local hands out the gateway's resolver (its resolvConf), and podman writes it into the containers
    const resolvConf = join(pm().dir, 'tbnet-resolv.conf');
    writeFileSync(resolvConf, 'nameserver 10.100.0.1\nsearch pm.test\n');
    pm().addNetwork({
      cniVersion: '1.0.0',
      name: 'tbnet',
      plugins: [
        {
          type: 'tapbridge',
          instance: lab.instance,
          bridge: 'br0',
          isGateway: true,
          capabilities: { portMappings: true, aliases: true },
          ipam: {
            type: 'host-local',
            dataDir: join(pm().dir, 'ipam'),
            resolvConf,
            ranges: [[{ subnet: '10.100.0.0/24', rangeStart: '10.100.0.100', rangeEnd: '10.100.0.150', gateway: '10.100.0.1' }]],
            routes: [{ dst: '0.0.0.0/0' }],
          },
        },
      ],
    });
    await pm().importImage();
  });

  after(async () => {
    const problems = podman !== null ? await podman.cleanup().catch((e: Error) => [e.message]) : [];
    await lab.stop().catch(() => {});
    await cleanupAll();
    assert.deepEqual(problems, [], 'podman cleanup');
  });

  test('podman sees tbnet through the CNI backend', async () => {
    assert.equal((await pm().check(['info', '--format', '{{.Host.NetworkBackend}}'])).trim(), 'cni');
    const nets = await pm().check(['network', 'ls', '--format', '{{.Name}} {{.Driver}}']);
    assert.match(nets, /^tbnet tapbridge$/m, nets);
  });

  test('a container pings the gateway and wan, and its port goes with --rm', async () => {
    for (const dst of ['10.100.0.1', '203.0.113.1']) {
      const r = await pm().run(['--rm', '--network', 'tbnet', IMAGE, 'ping', '-c1', '-W2', dst]);
      assert.equal(r.code, 0, describeRun(r));
      assert.match(r.stdout, /1 packets received/, r.stdout);
    }
    assert.deepEqual(await runtimePorts(), [], 'podman ran CNI DEL when the containers ended');
  });

  test('a second container resolves the first by its name at the gateway DNS and pings it', async (t) => {
    c1Id = await pm().runDetached(['--name', 'c1', '--network', 'tbnet', IMAGE, 'sleep', '60']);
    const c1 = await addressOf('c1');
    assert.match(c1, /^10\.100\.0\.1\d\d$/, 'an address of host-local\'s range');
    const r = await pm().run(['--rm', '--name', 'c2', '--network', 'tbnet', IMAGE, 'sh', '-c', 'cat /etc/resolv.conf; nslookup c1 10.100.0.1 && ping -c1 -W2 c1']);
    assert.equal(r.code, 0, describeRun(r));
    assert.match(r.stdout, /^nameserver 10\.100\.0\.1$/m, 'podman wrote the gateway resolver of the CNI result');
    assert.match(r.stdout, new RegExp(`Address: ${c1.replace(/\./g, '\\.')}`), `c1 resolves to ${c1}:\n${r.stdout}`);
    assert.match(r.stdout, new RegExp(`from ${c1.replace(/\./g, '\\.')}.*\\n[^]*1 packets received`), r.stdout);
    t.diagnostic(r.stdout.replace(/\n/g, ' | '));
  });

  test('-p 8080:80 is reachable from wan; podman stop removes the port and its published port', async () => {
    const id = await pm().runDetached(['--name', 'web', '-p', '8080:80', '--network', 'tbnet', IMAGE, 'httpd', '-f', '-p', '80', '-h', '/www']);
    const fetchPage = () => lab.exec('wan', 'curl', ['-sS', '-m', '3', 'http://203.0.113.2:8080/'], 10_000);
    const page = await waitFor('the page from wan', async () => {
      const r = await fetchPage();
      return r.code === 0 ? r.stdout : undefined;
    }, { timeoutMs: 10_000, intervalMs: 200 });
    assert.equal(page, WWW_TEXT);
    const port = (await runtimePorts()).find((p) => p.labels['cni.containerID'] === id);
    assert.ok(port !== undefined, `a runtime port for ${id}: ${JSON.stringify(await runtimePorts())}`);
    const forwards = async () => (await lab.ctl<{ port: number }[]>('forwards')).filter((f) => f.port === 8080);
    assert.equal((await forwards()).length, 1, 'the published port');

    await pm().check(['stop', '-t', '1', 'web'], 30_000);
    const ports = (await apiRequest(lab.tapbridge.socket, 'GET', '/v1/ports')) as { name: string }[];
    assert.ok(!ports.some((p) => p.name === port.name), `the port ${port.name} is gone after podman stop`);
    assert.deepEqual(await forwards(), [], 'the published port is gone');
    assert.notEqual((await fetchPage()).code, 0, 'wan no longer reaches the container');
    await pm().check(['rm', 'web']);
    assert.deepEqual((await runtimePorts()).map((p) => p.labels['cni.containerID']), [c1Id], 'only c1 is left');
  });
});
