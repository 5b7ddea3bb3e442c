/*
 * Hypervisor adapters: QMP against a real QEMU (no guest: `-machine none`, the vCPU state is
 * what stop/cont change), exec commands, and withQuiesce's fallback / require / always-thaw rules.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ExecQuiescer, loadQuiescers, QmpQuiescer, qmpCommand, withQuiesce, type Quiescer } from '../src/quiesce.js';

const QEMU = '/usr/bin/qemu-system-x86_64';
const vm = { id: '01JTESTVMID00000000000000', name: 'web-1' };

let dir: string;
let qemu: ChildProcess | undefined;
let qmpSocket: string;

interface QmpStatus {
  status: string;
  running: boolean;
}

async function status(): Promise<QmpStatus> {
  return (await qmpCommand(qmpSocket, 'query-status', undefined, 5000)) as QmpStatus;
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'vmferry-quiesce-'));
  if (!existsSync(QEMU)) return;
  qmpSocket = join(dir, 'qmp.sock');
  qemu = spawn(QEMU, ['-machine', 'none', '-accel', 'tcg', '-nodefaults', '-display', 'none', '-qmp', `unix:${qmpSocket},server=on,wait=off`], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let log = '';
  qemu.stderr?.on('data', (d: Buffer) => (log += d.toString()));
  const deadline = Date.now() + 10_000;
  while (!existsSync(qmpSocket)) {
    if (qemu.exitCode !== null) throw new Error(`qemu exited: ${log}`);
    if (Date.now() > deadline) throw new Error(`qemu's QMP socket did not appear: ${log}`);
    await sleep(20);
  }
});

after(async () => {
  if (qemu && qemu.exitCode === null && qemu.signalCode === null) {
    const exited = once(qemu, 'exit');
    qemu.kill('SIGTERM');
    await exited;
  }
  rmSync(dir, { recursive: true, force: true });
});

/** An exec adapter whose commands append to a log file (freeze may fail on purpose). */
function execAdapter(name: string, freeze = `echo "freeze $VMFERRY_VM_NAME $VMFERRY_VM_ID" >> LOG`): { q: ExecQuiescer; log: () => string[] } {
  const logFile = join(dir, `${name}.log`);
  const q = new ExecQuiescer({
    type: 'exec',
    freeze: freeze.replaceAll('LOG', `'${logFile}'`),
    thaw: `echo "thaw $VMFERRY_VM_NAME $VMFERRY_VM_ID" >> '${logFile}'`,
  });
  return { q, log: () => (existsSync(logFile) ? readFileSync(logFile, 'utf8').trim().split('\n') : []) };
}

describe('QMP adapter against a real QEMU', { skip: !existsSync(QEMU) && `${QEMU} is not installed` }, () => {
  test('freeze pauses the vCPUs, thaw resumes them', async () => {
    const before = await status();
    assert.equal(before.status, 'running');
    assert.equal(before.running, true);
    const q = new QmpQuiescer({ type: 'qmp', socket: qmpSocket });
    assert.equal(await q.freeze(), 'qmp: vCPUs paused');
    const paused = await status();
    assert.equal(paused.status, 'paused');
    assert.equal(paused.running, false);
    await q.thaw();
    const resumed = await status();
    assert.equal(resumed.status, 'running');
    assert.equal(resumed.running, true);
  });

  test('a guest agent socket nothing listens on: falls back to pausing', async () => {
    const q = new QmpQuiescer({ type: 'qmp', socket: qmpSocket, guestAgent: join(dir, 'no-agent.sock') });
    assert.equal(await q.freeze(), 'qmp: vCPUs paused');
    assert.equal((await status()).status, 'paused');
    await q.thaw();
    assert.equal((await status()).status, 'running');
  });

  test('a guest agent that never answers: falls back to pausing after the ping times out', async () => {
    const agentPath = join(dir, 'silent-agent.sock');
    const silent: Server = createServer(() => undefined);
    await new Promise<void>((r) => silent.listen(agentPath, r));
    try {
      const q = new QmpQuiescer({ type: 'qmp', socket: qmpSocket, guestAgent: agentPath, timeoutMs: 5000 });
      const started = Date.now();
      assert.equal(await q.freeze(), 'qmp: vCPUs paused');
      assert.ok(Date.now() - started < 4000, 'the ping timeout is at most 2 s');
      assert.equal((await status()).status, 'paused');
      await q.thaw();
      assert.equal((await status()).status, 'running');
    } finally {
      silent.close();
    }
  });

  test('a guest agent that answers is used (fsfreeze), and thawed through the agent', async () => {
    // A fake qemu-guest-agent: answers guest-ping and fsfreeze commands, records them.
    const agentPath = join(dir, 'fake-agent.sock');
    const seen: string[] = [];
    const agent: Server = createServer((sock) => {
      let buf = '';
      sock.on('data', (d: Buffer) => {
        buf += d.toString();
        let nl;
        while ((nl = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          const cmd = (JSON.parse(line) as { execute: string }).execute;
          seen.push(cmd);
          sock.write(`${JSON.stringify({ return: cmd === 'guest-ping' ? {} : 1 })}\n`);
        }
      });
    });
    await new Promise<void>((r) => agent.listen(agentPath, r));
    try {
      const q = new QmpQuiescer({ type: 'qmp', socket: qmpSocket, guestAgent: agentPath });
      assert.equal(await q.freeze(), 'qmp: guest agent fsfreeze');
      // The vCPUs keep running: the guest froze its file systems.
      assert.equal((await status()).status, 'running');
      await q.thaw();
      assert.deepEqual(seen, ['guest-ping', 'guest-fsfreeze-freeze', 'guest-fsfreeze-thaw']);
    } finally {
      agent.close();
    }
  });

  test('withQuiesce with the QMP adapter: VM-consistent, the snapshot is taken while paused', async () => {
    const q = new QmpQuiescer({ type: 'qmp', socket: qmpSocket });
    const r = await withQuiesce(q, vm, 'vm', false, async (consistency, note) => {
      assert.equal(consistency, 'vm');
      assert.equal(note, undefined);
      return (await status()).status;
    });
    assert.equal(r.consistency, 'vm');
    assert.equal(r.value, 'paused');
    assert.equal(r.note, undefined);
    assert.equal((await status()).status, 'running');
  });

  test('qmpCommand reports QMP errors and a missing socket', async () => {
    await assert.rejects(qmpCommand(qmpSocket, 'no-such-command', undefined, 5000), /no-such-command: .*/);
    await assert.rejects(qmpCommand(join(dir, 'nothing.sock'), 'query-status', undefined, 1000), /ENOENT/);
    // Still usable afterwards.
    assert.equal((await status()).status, 'running');
  });

  test("{{name}} in a qmp adapter's socket path gives each VM its own adapter on its own socket", async () => {
    // The QEMU here listens on DIR/qmp.sock: it plays the VM named 'qmp'.
    const file = join(dir, 'per-vm.json');
    writeFileSync(file, JSON.stringify({ '*': { type: 'qmp', socket: join(dir, '{{name}}.sock'), timeoutMs: 1000 } }));
    const pick = await loadQuiescers(file);
    const mine = pick('qmp');
    assert.ok(mine instanceof QmpQuiescer);
    assert.equal(pick('qmp'), mine, 'the same adapter for the same VM, so its thaw meets its freeze');
    assert.notEqual(pick('desk-002'), mine);
    const q: Quiescer = mine;
    assert.equal(await q.freeze({ id: vm.id, name: 'qmp' }), 'qmp: vCPUs paused');
    assert.equal((await status()).status, 'paused');
    await q.thaw({ id: vm.id, name: 'qmp' });
    assert.equal((await status()).status, 'running');
    await assert.rejects(pick('desk-002')?.freeze({ id: vm.id, name: 'desk-002' }) ?? Promise.resolve(), /desk-002\.sock|ENOENT/);
  });
});

describe('exec adapter', () => {
  test('VMFERRY_VM_NAME and VMFERRY_VM_ID reach the freeze and thaw commands', async () => {
    const { q, log } = execAdapter('env');
    assert.match(await q.freeze(vm), /^exec: /);
    await q.thaw(vm);
    assert.deepEqual(log(), [`freeze ${vm.name} ${vm.id}`, `thaw ${vm.name} ${vm.id}`]);
  });

  test('a failing command rejects with its stderr; a slow one times out', async () => {
    const q = new ExecQuiescer({ type: 'exec', freeze: 'echo cannot freeze >&2; exit 3', thaw: 'sleep 5', timeoutMs: 300 });
    await assert.rejects(q.freeze(vm), /cannot freeze/);
    const started = Date.now();
    await assert.rejects(q.thaw(vm));
    assert.ok(Date.now() - started < 3000);
  });

  test('loadQuiescers picks the adapter by VM name, falling back to *', async () => {
    const file = join(dir, 'adapters.json');
    writeFileSync(file, JSON.stringify({ 'web-1': { type: 'qmp', socket: '/run/web-1.qmp' }, '*': { type: 'exec', freeze: 'true', thaw: 'true' } }));
    const pick = await loadQuiescers(file);
    assert.ok(pick('web-1') instanceof QmpQuiescer);
    assert.ok(pick('db-1') instanceof ExecQuiescer);
    writeFileSync(file, JSON.stringify({ 'web-1': { type: 'qmp' } }));
    await assert.rejects(loadQuiescers(file), /hypervisor adapter for 'web-1'/);
  });
});

describe('withQuiesce', () => {
  test("'crash' never freezes", async () => {
    const { q, log } = execAdapter('crash');
    const r = await withQuiesce(q, vm, 'crash', true, async (consistency) => consistency);
    assert.deepEqual(r, { value: 'crash', consistency: 'crash' });
    assert.deepEqual(log(), []);
  });

  test("'vm' with a working adapter: consistency 'vm', frozen during take, thawed after", async () => {
    const { q, log } = execAdapter('ok');
    const r = await withQuiesce(q, vm, 'vm', false, async (consistency) => {
      assert.deepEqual(log(), [`freeze ${vm.name} ${vm.id}`], 'frozen, not yet thawed, while the snapshot is taken');
      return consistency;
    });
    assert.deepEqual(r, { value: 'vm', consistency: 'vm' });
    assert.deepEqual(log(), [`freeze ${vm.name} ${vm.id}`, `thaw ${vm.name} ${vm.id}`]);
  });

  test("a failing freeze falls back to 'crash' with a note, and thaw still runs", async () => {
    const { q, log } = execAdapter('fail', 'false');
    let takenWith: { consistency: string; note: string | undefined } | undefined;
    const r = await withQuiesce(q, vm, 'vm', false, async (consistency, note) => {
      takenWith = { consistency, note };
      return 'snap';
    });
    assert.equal(r.value, 'snap');
    assert.equal(r.consistency, 'crash');
    assert.match(r.note ?? '', /^quiesce failed: 'false' failed/);
    assert.deepEqual(takenWith, { consistency: 'crash', note: r.note });
    assert.deepEqual(log(), [`thaw ${vm.name} ${vm.id}`], 'thaw ran after the failed freeze');
  });

  test('requireVmConsistency: a failing freeze rejects, nothing is taken, thaw still runs', async () => {
    const { q, log } = execAdapter('require', 'false');
    let taken = false;
    await assert.rejects(
      withQuiesce(q, vm, 'vm', true, async () => {
        taken = true;
      }),
      /VM-consistent snapshot of 'web-1' required, but quiesce failed/,
    );
    assert.equal(taken, false);
    assert.deepEqual(log(), [`thaw ${vm.name} ${vm.id}`]);
  });

  test('no adapter: crash-consistent with a note, or rejected when required', async () => {
    const r = await withQuiesce(undefined, vm, 'vm', false, async (c) => c);
    assert.deepEqual(r, { value: 'crash', consistency: 'crash', note: 'no hypervisor adapter configured for this VM' });
    await assert.rejects(
      withQuiesce(undefined, vm, 'vm', true, async () => 'x'),
      /required, but no hypervisor adapter/,
    );
  });

  test('thaw runs even when take throws, and the error is the one from take', async () => {
    const { q, log } = execAdapter('throws');
    await assert.rejects(
      withQuiesce(q, vm, 'vm', false, async () => {
        throw new Error('disk read failed');
      }),
      /disk read failed/,
    );
    assert.deepEqual(log(), [`freeze ${vm.name} ${vm.id}`, `thaw ${vm.name} ${vm.id}`]);
  });

  test('thaw runs exactly once per freeze, with an in-memory adapter', async () => {
    const calls: string[] = [];
    const q: Quiescer = {
      freeze: async (v) => {
        calls.push(`freeze ${v.name}`);
        return 'fake';
      },
      thaw: async (v) => {
        calls.push(`thaw ${v.name}`);
      },
    };
    await withQuiesce(q, vm, 'vm', true, async () => calls.push('take'));
    assert.deepEqual(calls, ['freeze web-1', 'take', 'thaw web-1']);
  });
});
