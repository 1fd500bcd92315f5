/** A pipeline of `n` trivial shell stages where stage i depends on stage ⌊(i−1)/2⌋: a binary tree. */
export function binaryTreePipeline(n: number): string {
  const lines = ['pipeline: tree', 'stages:'];
  for (let i = 0; i < n; i++) {
    const input = i ? `, in: { p: s${Math.floor((i - 1) / 2)} }` : '';
    lines.push(`  s${i}: { uses: shell${input}, with: { cmd: 'echo ${i} > $ABLATE_OUT/o.txt', outs: [o.txt] } }`);
  }
  return lines.join('\n') + '\n';
}

/**
 * binaryTreePipeline's tree as a Snakefile: one wildcard rule, the same shell command per
 * stage, each stage's output a file its children read, and a target rule asking for all.
 */
export function binaryTreeSnakefile(n: number): string {
  return `N = ${n}

rule all:
    input: expand("out/s{i}.txt", i=range(N))

rule stage:
    input: lambda w: [] if int(w.i) == 0 else [f"out/s{(int(w.i) - 1) // 2}.txt"]
    output: "out/s{i}.txt"
    shell: "echo {wildcards.i} > {output}"
`;
}
