// Child processes for tests and the bench: a throwaway redis-server and `ablate worker`s,
// each stopped by process id, and waiting for any child to exit.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';

export const hasRedisServer = (): boolean => spawnSync('redis-server', ['--version']).status === 0;

/** A child process with its output collected, and a way to wait for a line. */
export interface Started {
  readonly child: ChildProcess;
  output(): string;
  waitFor(pattern: RegExp, ms?: number): Promise<void>;
  /** SIGKILL unless it already ended; resolves when it has. */
  stop(): Promise<void>;
}

export function start(command: string, args: readonly string[], cwd: string, env: NodeJS.ProcessEnv = {}): Started {
  const child = spawn(command, args, { cwd, env: { ...process.env, CI: '1', ...env } });
  let text = '';
  child.stdout?.on('data', (d: Buffer) => (text += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (text += d.toString()));
  return {
    child,
    output: () => text,
    waitFor: (pattern, ms = 20_000) =>
      new Promise((resolve, reject) => {
        const deadline = Date.now() + ms;
        const poll = () =>
          pattern.test(text)
            ? resolve()
            : Date.now() > deadline
              ? reject(new Error(`timed out waiting for ${pattern}; output:\n${text}`))
              : setTimeout(poll, 50);
        poll();
      }),
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited(child);
    },
  };
}

/** Its exit code (-1 when a signal ended it). */
export function exited(child: ChildProcess): Promise<number> {
  return new Promise((resolve) =>
    child.exitCode !== null || child.signalCode !== null
      ? resolve(child.exitCode ?? -1)
      : child.once('exit', (code) => resolve(code ?? -1)),
  );
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** Debian's redis-server on a free local port (or `port`: a restart), with no persistence; ready to use. */
export async function startRedis(port?: number): Promise<Started & { url: string; port: number }> {
  port ??= await freePort();
  const redis = start('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], process.cwd());
  await redis.waitFor(/Ready to accept connections/);
  return { ...redis, url: `redis://127.0.0.1:${port}`, port };
}

/** Polls until `condition` holds (an event: a file appears, a process ends); fails after `timeoutMs` so a bug cannot hang the suite. */
export async function waitFor(condition: () => boolean, timeoutMs = 20_000): Promise<void> {
  const start = Date.now();
  while (!condition()) {
    if (Date.now() - start > timeoutMs) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Whether a process with this pid is running here. */
export function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
