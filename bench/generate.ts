/** A pipeline of `n` trivial shell stages where stage i depends on stage ⌊(i−1)/2⌋: a binary tree. */
export function binaryTreePipeline(n: number): string {
  const lines = ['pipeline: tree', 'stages:'];
  for (let i = 0; i < n; i++) {
    const input = i ? `, in: { p: s${Math.floor((i - 1) / 2)} }` : '';
    lines.push(`  s${i}: { uses: shell${input}, with: { cmd: 'echo ${i} > $ABLATE_OUT/o.txt', outs: [o.txt] } }`);
  }
  return lines.join('\n') + '\n';
}
