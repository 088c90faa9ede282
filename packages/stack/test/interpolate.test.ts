// Docker Compose's substitution forms, one row each: what a template becomes for a given environment, or the
// error it gives. A row fails if the form's rule (unset vs empty, nesting, escapes) changes.

import test from 'ava';
import fc from 'fast-check';
import { interpolate } from '../src/index.js';
import { InterpolationError } from '../src/interpolate.js';

const env: Record<string, string> = { SET: 'value', EMPTY: '', PORT: '8080', NESTED: 'inner' };
const lookup = (name: string): string | undefined => (Object.hasOwn(env, name) ? env[name] : undefined);

const rows: Array<[template: string, expected: string, unset?: string[]]> = [
  ['plain text', 'plain text'],
  ['$SET', 'value'],
  ['${SET}', 'value'],
  ['a-$SET-b', 'a-value-b'],
  ['$SET.suffix', 'value.suffix'],
  ['${SET}suffix', 'valuesuffix'],
  ['$UNSET', '', ['UNSET']],
  ['${UNSET}', '', ['UNSET']],
  ['$$', '$'],
  ['$$SET', '$SET'],
  ['$${SET}', '${SET}'],
  ['cost: $$5', 'cost: $5'],
  ['${SET:-default}', 'value'],
  ['${EMPTY:-default}', 'default'],
  ['${UNSET:-default}', 'default'],
  ['${SET-default}', 'value'],
  ['${EMPTY-default}', ''],
  ['${UNSET-default}', 'default'],
  ['${UNSET:-}', ''],
  ['${UNSET:-a b c}', 'a b c'],
  ['${UNSET:-${NESTED}}', 'inner'],
  ['${UNSET:-${ALSO_UNSET:-deep}}', 'deep'],
  ['${UNSET:-$$literal}', '$literal'],
  ['${SET:+alt}', 'alt'],
  ['${EMPTY:+alt}', ''],
  ['${UNSET:+alt}', ''],
  ['${SET+alt}', 'alt'],
  ['${EMPTY+alt}', 'alt'],
  ['${UNSET+alt}', ''],
  ['${SET:?must be set}', 'value'],
  ['${EMPTY?only unset fails}', ''],
  ['${PORT}:80', '8080:80'],
  ['${_UNDERSCORE_1:-x}', 'x'],
  ['${UNSET:-{braces}}', '{braces}'],
];

for (const [template, expected, unset] of rows) {
  test(`interpolate ${JSON.stringify(template)} -> ${JSON.stringify(expected)}`, (t) => {
    const r = interpolate(template, lookup);
    t.is(r.value, expected);
    t.deepEqual(r.unset, unset ?? []);
  });
}

const errors: Array<[template: string, kind: 'syntax' | 'required', message: RegExp]> = [
  ['${UNSET:?please set UNSET}', 'required', /^required variable UNSET is missing a value: please set UNSET$/],
  ['${EMPTY:?empty is missing too}', 'required', /^required variable EMPTY is missing a value: empty is missing too$/],
  ['${UNSET?}', 'required', /^required variable UNSET is missing a value$/],
  ['${UNSET:?needs ${SET}}', 'required', /missing a value: needs value$/],
  ['$', 'syntax', /invalid interpolation format in "\$"/],
  ['echo $1', 'syntax', /escape any \$ with another \$/],
  ['${', 'syntax', /invalid interpolation format/],
  ['${}', 'syntax', /invalid interpolation format/],
  ['${SET', 'syntax', /invalid interpolation format/],
  ['${1VAR}', 'syntax', /invalid interpolation format/],
  ['${SET:=x}', 'syntax', /invalid interpolation format/],
  ['${SET x}', 'syntax', /invalid interpolation format/],
  ['100$ ', 'syntax', /invalid interpolation format/],
];

for (const [template, kind, message] of errors) {
  test(`interpolate ${JSON.stringify(template)} fails (${kind})`, (t) => {
    const err = t.throws(() => interpolate(template, lookup), { instanceOf: InterpolationError });
    t.is(err?.kind, kind);
    t.regex(err?.message ?? '', message);
  });
}

test('a bad $ in a long value is quoted with a little context, not the whole value', (t) => {
  const script = `${'echo one\n'.repeat(20)}export UID=$(id -u)\n${'echo two\n'.repeat(20)}`;
  const err = t.throws(() => interpolate(script, lookup), { instanceOf: InterpolationError });
  t.is(err?.message, 'invalid interpolation format in "…one\\necho one\\nexport UID=$(id -u)\\necho two\\necho t…": you may need to escape any $ with another $');
});

test('deeply nested defaults end in an error, not a stack overflow', (t) => {
  const template = `${'${U:-'.repeat(200)}x${'}'.repeat(200)}`;
  t.throws(() => interpolate(template, lookup), { instanceOf: InterpolationError, message: /nested more than/ });
});

test('any text either substitutes or fails with an InterpolationError; text without $ is unchanged', (t) => {
  const pieces = fc.array(fc.constantFrom('$', '$$', '${', '}', ':', '-', '?', '+', 'SET', 'EMPTY', 'UNSET', 'a', ' ', '{', '\n'), { maxLength: 30 });
  fc.assert(
    fc.property(pieces, (parts) => {
      const text = parts.join('');
      try {
        const r = interpolate(text, lookup);
        if (!text.includes('$') && r.value !== text) throw new Error(`changed text without $: ${JSON.stringify(text)}`);
      } catch (err) {
        if (!(err instanceof InterpolationError)) throw err;
      }
    }),
    { numRuns: 2000, seed: 9 },
  );
  t.pass();
});
