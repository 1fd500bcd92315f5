import type { DependencyGraph } from './dag.js';

/**
 * Text drawings of the instance graph. Pure: they take the graph (id → dependencies, in
 * dependency order) and return a string.
 */

/** Roots first, each dependent indented under what it needs; a node reached again is shown as `↑ id`. */
export function renderTextTree(graph: DependencyGraph): string {
  const children = new Map<string, string[]>();
  for (const [node, deps] of graph) for (const dep of deps) (children.get(dep) ?? children.set(dep, []).get(dep)!).push(node);
  const lines: string[] = [];
  const printed = new Set<string>();
  const walk = (node: string, prefix: string, branch: string) => {
    const again = printed.has(node);
    const deps = graph.get(node) ?? [];
    const note = deps.length > 1 && !again ? `  (needs ${deps.join(', ')})` : '';
    lines.push(`${prefix}${branch}${again ? `↑ ${node}` : node}${note}`);
    if (again) return;
    printed.add(node);
    const kids = children.get(node) ?? [];
    const childPrefix = prefix + (branch === '' ? '' : branch === '└─ ' ? '   ' : '│  ');
    kids.forEach((kid, i) => walk(kid, childPrefix, i === kids.length - 1 ? '└─ ' : '├─ '));
  };
  for (const [node, deps] of graph) if (!deps.length) walk(node, '', '');
  return lines.join('\n') + '\n';
}

export function renderMermaid(graph: DependencyGraph): string {
  const ids = new Map([...graph.keys()].map((node, i) => [node, `n${i}`]));
  const lines = ['graph TD'];
  for (const [node, id] of ids) lines.push(`  ${id}["${node.replace(/"/g, '#quot;')}"]`);
  for (const [node, deps] of graph) for (const dep of deps) lines.push(`  ${ids.get(dep)} --> ${ids.get(node)}`);
  return lines.join('\n') + '\n';
}

export function renderDot(graph: DependencyGraph): string {
  const quote = (s: string) => `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
  const lines = ['digraph pipeline {', '  rankdir=LR;', '  node [shape=box];'];
  for (const node of graph.keys()) lines.push(`  ${quote(node)};`);
  for (const [node, deps] of graph) for (const dep of deps) lines.push(`  ${quote(dep)} -> ${quote(node)};`);
  lines.push('}');
  return lines.join('\n') + '\n';
}
