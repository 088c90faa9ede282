// Placement constraints as Docker writes them (`node.role==manager`, `node.labels.zone!=b`): parsing with errors
// that name the expression, and matching against a Node the way SwarmKit does (values compared case-insensitively).

import type { Node } from '@swarm/store';

export type ConstraintKey =
  | { kind: 'id' }
  | { kind: 'hostname' }
  | { kind: 'role' }
  | { kind: 'os' }
  | { kind: 'arch' }
  | { kind: 'nodeLabel'; label: string }
  | { kind: 'engineLabel'; label: string };

export interface Constraint {
  readonly expression: string;
  readonly key: ConstraintKey;
  readonly op: '==' | '!=';
  readonly value: string;
}

/** A constraint that does not parse; the message names it and says what is allowed. */
export class ConstraintError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConstraintError';
  }
}

const KEYS = 'node.id, node.hostname, node.role, node.platform.os, node.platform.arch, node.labels.<name>, engine.labels.<name>';
const LABEL = /^[A-Za-z0-9_.-]+$/;
const VALUE = /^[A-Za-z0-9_.*\-/:@]+$/;

function parseKey(raw: string, expression: string): ConstraintKey {
  const key = raw.toLowerCase();
  if (key === 'node.id') return { kind: 'id' };
  if (key === 'node.hostname') return { kind: 'hostname' };
  if (key === 'node.role') return { kind: 'role' };
  if (key === 'node.platform.os') return { kind: 'os' };
  if (key === 'node.platform.arch') return { kind: 'arch' };
  for (const [prefix, kind] of [
    ['node.labels.', 'nodeLabel'],
    ['engine.labels.', 'engineLabel'],
  ] as const) {
    if (key.startsWith(prefix)) {
      const label = raw.slice(prefix.length);
      if (!LABEL.test(label)) throw new ConstraintError(`constraint ${JSON.stringify(expression)}: invalid label name ${JSON.stringify(label)}`);
      return { kind, label };
    }
  }
  throw new ConstraintError(`constraint ${JSON.stringify(expression)}: unknown key ${JSON.stringify(raw)} (use ${KEYS})`);
}

export function parseConstraint(expression: string): Constraint {
  const m = /^(.*?)(==|!=)(.*)$/.exec(expression);
  if (m === null) throw new ConstraintError(`constraint ${JSON.stringify(expression)}: expected KEY==VALUE or KEY!=VALUE`);
  const rawKey = (m[1] ?? '').trim();
  const op = m[2] as '==' | '!=';
  const value = (m[3] ?? '').trim();
  if (rawKey === '') throw new ConstraintError(`constraint ${JSON.stringify(expression)}: the key before ${op} is empty`);
  if (value === '') throw new ConstraintError(`constraint ${JSON.stringify(expression)}: the value after ${op} is empty`);
  if (value.includes('==') || value.includes('!=') || !VALUE.test(value)) {
    throw new ConstraintError(`constraint ${JSON.stringify(expression)}: invalid value ${JSON.stringify(value)}`);
  }
  const key = parseKey(rawKey, expression);
  if (key.kind === 'role' && !['manager', 'worker'].includes(value.toLowerCase())) {
    throw new ConstraintError(`constraint ${JSON.stringify(expression)}: node.role is manager or worker, not ${JSON.stringify(value)}`);
  }
  return { expression, key, op, value };
}

export function parseConstraints(expressions: readonly string[]): Constraint[] {
  return expressions.map(parseConstraint);
}

/** Docker and Go name the same architecture differently (amd64/x86_64, arm64/aarch64): one name for each. */
export function normalizeArch(arch: string): string {
  const a = arch.toLowerCase();
  return a === 'amd64' ? 'x86_64' : a === 'arm64' ? 'aarch64' : a;
}

/** The node's values for a key; undefined when the node has no such label (never equal to anything). */
function valuesOf(node: Node, key: ConstraintKey): string[] | undefined {
  switch (key.kind) {
    case 'id':
      return [node.id];
    case 'hostname':
      return [node.description.hostname];
    case 'role':
      return [node.spec.role];
    case 'os':
      return [node.description.platform.os];
    case 'arch':
      return [normalizeArch(node.description.platform.arch)];
    case 'nodeLabel': {
      const v = node.spec.labels[key.label];
      return v === undefined ? undefined : [v];
    }
    case 'engineLabel': {
      const v = node.description.engineLabels[key.label];
      return v === undefined ? undefined : [v];
    }
  }
}

export function constraintHolds(node: Node, c: Constraint): boolean {
  const values = valuesOf(node, c.key);
  const want = c.key.kind === 'arch' ? normalizeArch(c.value) : c.value.toLowerCase();
  const equal = values !== undefined && values.some((v) => v.toLowerCase() === want);
  return c.op === '==' ? equal : !equal;
}

export function constraintsHold(node: Node, constraints: readonly Constraint[]): boolean {
  return constraints.every((c) => constraintHolds(node, c));
}

export type CompiledConstraints = { ok: true; constraints: Constraint[] } | { ok: false; error: string };

const compiled = new Map<string, CompiledConstraints>();
/** Distinct constraint lists kept parsed; the leader's reconcilers parse the same few lists on every pass. */
const MAX_COMPILED = 10_000;

/**
 * A task spec's constraints, parsed once per distinct list (the reconcilers ask on every pass). A list that does
 * not parse (an older version's spec; validation keeps new ones out) comes back with the error.
 */
export function compileConstraints(expressions: readonly string[]): CompiledConstraints {
  const key = expressions.join('\u0001');
  let c = compiled.get(key);
  if (c === undefined) {
    try {
      c = { ok: true, constraints: parseConstraints(expressions) };
    } catch (err) {
      c = { ok: false, error: (err as Error).message };
    }
    if (compiled.size >= MAX_COMPILED) compiled.clear();
    compiled.set(key, c);
  }
  return c;
}
