import { mkdirSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { removeDirectory, uniqueSuffix } from './fsutil.js';

/**
 * Empty folders under a workspace's tmp/ for stages to write their outputs into. A folder
 * the store's ingest left empty is handed to the next stage instead of being deleted and
 * made again: ext4 without a journal makes every new file skip the inodes freed in the last
 * 60 s, so a folder created and removed per stage slowed every later file creation of a run. It is
 * renamed when given back, so a process the last stage left behind that writes to the old
 * path finds nothing there. Names follow uniqueSuffix(), so a killed run's folders are
 * swept by owner like any temp dir.
 */
export class ScratchDirs {
  private readonly free: string[] = [];

  constructor(private readonly root: string) {}

  take(): string {
    const reused = this.free.pop();
    if (reused) return reused;
    const dir = this.freshName();
    mkdirSync(dir, { recursive: true });
    return dir;
  }

  /** Back from a stage: kept if empty, else removed with what is left in it. */
  give(dir: string): void {
    let empty: boolean;
    try {
      empty = readdirSync(dir).length === 0;
    } catch {
      return;
    }
    if (!empty) return rmSync(dir, { recursive: true, force: true });
    const renamed = this.freshName();
    renameSync(dir, renamed);
    this.free.push(renamed);
  }

  /** Removes the folders kept for reuse: at the end of a run. */
  dispose(): void {
    for (const dir of this.free.splice(0)) removeDirectory(dir);
  }

  private freshName(): string {
    return join(this.root, `out-${uniqueSuffix()}`);
  }
}
