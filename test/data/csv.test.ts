import test from 'ava';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readCsvFile } from '../../src/data/csv.js';
import { loadCsv, parseCsv } from '../../src/data/index.js';
import { DatasetError, InvalidOptionError } from '../../src/errors.js';
import { tempDir } from './idx-writer.js';

const dir = tempDir();
test.after.always(() => fs.rmSync(dir, { recursive: true, force: true }));

function csvError(t: import('ava').ExecutionContext, fn: () => unknown, code: string): string {
  const err = t.throws(fn, { instanceOf: DatasetError });
  t.is(err?.code, code, err?.message);
  return err?.message ?? '';
}

test('numbers, header and label column', (t) => {
  const ds = parseCsv('Time,V1,Amount,Class\n0,-1.5,149.62,0\n1,2e-3,2.69,1\n2,.5,+3,0\n', 'cc.csv', { label: 'Class' });
  t.deepEqual(ds.featureNames, ['Time', 'V1', 'Amount']);
  t.is(ds.x.rows, 3);
  t.is(ds.x.cols, 3);
  t.deepEqual(Array.from(ds.x.data), [0, -1.5, 149.62, 1, 0.002, 2.69, 2, 0.5, 3].map(Math.fround));
  t.true(ds.y instanceof Int32Array);
  t.deepEqual(Array.from(ds.y!), [0, 1, 0]);
  t.is(ds.classes, 2);
  t.is(ds.labelName, 'Class');
  t.is(ds.source, 'csv:cc.csv');
});

test('RFC 4180 quoting: delimiters, escaped quotes and line breaks inside quotes; CRLF; BOM; blank lines', (t) => {
  const text = '\uFEFF"a,1","say ""hi""","multi\r\nline",label\r\n"1","2.5",3,"1"\r\n\r\n4,5,"6",0\r\n';
  const ds = parseCsv(text, 'q.csv', { label: 'label' });
  t.deepEqual(ds.featureNames, ['a,1', 'say "hi"', 'multi\r\nline']);
  t.deepEqual(Array.from(ds.x.data), [1, 2.5, 3, 4, 5, 6]);
  t.deepEqual(Array.from(ds.y!), [1, 0]);
  // the header spans lines 1-2, so the data rows are on lines 3 and 5
  const msg = csvError(t, () => parseCsv(text.replace('4,5', '4,x'), 'q.csv'), 'ENONNUMERIC');
  t.true(msg.includes('line 5, column \'say "hi"\''), msg);
});

test('a non-numeric cell names the file, the line and the column', (t) => {
  const text = 'Time,Amount,Class\n0,1,0\n1,abc,0\n';
  const msg = csvError(t, () => parseCsv(text, 'creditcard.csv', { label: 'Class' }), 'ENONNUMERIC');
  t.is(msg, "creditcard.csv: line 3, column 'Amount': expected a number, got 'abc'.");
  for (const bad of ['0x10', '1e', '-', '1.2.3', '1,5'.replace(',', ';')]) {
    csvError(t, () => parseCsv(`a\n${bad}\n`, 'x.csv'), 'ENONNUMERIC');
  }
});

test('empty cells, NaN, Inf and float32 overflow are rejected', (t) => {
  const empty = csvError(t, () => parseCsv('a,b\n1,2\n\n1,\n', 'e.csv'), 'EMISSING');
  t.is(empty, "e.csv: line 4 (data row 2), column 'b': missing value (an empty cell); expected a number.");
  const blank = csvError(
    t,
    () => parseCsv('a;b;y\n1;2;x\n3; ;\n', 'e.csv', { delimiter: ';', label: 'y', labelType: 'category' }),
    'EMISSING',
  );
  t.is(blank, "e.csv: line 3 (data row 2), column 'b': missing value (an empty cell); expected a number.");
  const noLabel = csvError(t, () => parseCsv('a,y\n1,x\n3,\n', 'e.csv', { label: 'y', labelType: 'category' }), 'EMISSING');
  t.is(noLabel, "e.csv: line 3 (data row 2), column 'y': missing value (an empty cell); expected a class label.");
  for (const v of ['NaN', 'Infinity', '-inf', '"nan"']) {
    const msg = csvError(t, () => parseCsv(`a,b\n1,2\n3,${v}\n`, 'n.csv'), 'ENONFINITE');
    t.true(msg.startsWith("n.csv: line 3, column 'b'"), msg);
  }
  csvError(t, () => parseCsv('a\n1e39\n', 'big.csv'), 'ENONFINITE');
});

test('a ragged row names its line', (t) => {
  const msg = csvError(t, () => parseCsv('a,b,c\n1,2,3\n4,5,6\n7,8\n', 'r.csv'), 'ERAGGED');
  t.is(msg, 'r.csv: line 4: expected 3 fields (as in the header on line 1), got 2.');
  csvError(t, () => parseCsv('a,b\n1,2,3\n', 'r.csv'), 'ERAGGED');
});

test('a missing label column lists the columns that exist', (t) => {
  const msg = csvError(t, () => parseCsv('Time,V1,Amount\n1,2,3\n', 'm.csv', { label: 'Class' }), 'ECOLUMN');
  t.is(msg, "m.csv: no column 'Class' (the label); the columns are 'Time', 'V1', 'Amount'.");
  csvError(t, () => parseCsv('a,b\n1,2\n', 'm.csv', { columns: ['a', 'z'] }), 'ECOLUMN');
});

test('empty file, header only, duplicate names, unclosed quote', (t) => {
  t.regex(
    csvError(t, () => parseCsv('', 'empty.csv'), 'EEMPTY'),
    /^empty\.csv: the file is empty/,
  );
  csvError(t, () => parseCsv('\n\r\n\n', 'blank.csv'), 'EEMPTY');
  t.regex(
    csvError(t, () => parseCsv('a,b\n', 'h.csv'), 'EEMPTY'),
    /h\.csv: no data rows after the header on line 1/,
  );
  t.regex(
    csvError(t, () => parseCsv('a,b,a\n1,2,3\n', 'd.csv'), 'EHEADER'),
    /columns 1 and 3 are both named 'a'/,
  );
  t.regex(
    csvError(t, () => parseCsv('a,b\n1,"2\n3,4\n', 'u.csv'), 'EQUOTE'),
    /u\.csv: line 2: a quoted field is never closed/,
  );
  t.regex(
    csvError(t, () => parseCsv('a,b\n1,"2"x\n', 'u.csv'), 'EQUOTE'),
    /line 2: unexpected character 'x'/,
  );
});

test('class labels must be integers ≥ 0; labelType number keeps any number', (t) => {
  t.regex(
    csvError(t, () => parseCsv('a,y\n1,0\n2,0.5\n', 'l.csv', { label: 'y' }), 'ELABEL'),
    /line 3, column 'y': expected an integer class label ≥ 0, got '0.5'/,
  );
  csvError(t, () => parseCsv('a,y\n1,-1\n', 'l.csv', { label: 'y' }), 'ELABEL');
  const reg = parseCsv('a,y\n1,0.5\n2,-3\n', 'l.csv', { label: 'y', labelType: 'number' });
  t.true(reg.y instanceof Float32Array);
  t.deepEqual(Array.from(reg.y!), [0.5, -3]);
  t.is(reg.classes, undefined);
  const three = parseCsv('y,a\n2,1\n0,1\n2,1\n', 'l.csv', { label: 'y' });
  t.is(three.classes, 3);
});

test('columns selects and orders features; unselected columns may hold text', (t) => {
  const ds = parseCsv('id,name,x1,x2,y\n7,"Smith, J",1,2,1\n8,Doe,3,4,0\n', 's.csv', { label: 'y', columns: ['x2', 'x1'] });
  t.deepEqual(ds.featureNames, ['x2', 'x1']);
  t.deepEqual(Array.from(ds.x.data), [2, 1, 4, 3]);
  t.throws(() => parseCsv('a,y\n1,0\n', 's.csv', { label: 'y', columns: ['y'] }), { instanceOf: InvalidOptionError });
});

test('no header, other delimiters, surrounding spaces', (t) => {
  const ds = parseCsv('1;2;0\n3; 4 ;1\n', 'n.csv', { hasHeader: false, delimiter: ';', label: 'col3' });
  t.deepEqual(ds.featureNames, ['col1', 'col2']);
  t.deepEqual(Array.from(ds.x.data), [1, 2, 3, 4]);
  t.deepEqual(Array.from(ds.y!), [0, 1]);
  const tsv = parseCsv('a\tb\n1.25\t-2\n', 't.tsv', { delimiter: '\t' });
  t.deepEqual(Array.from(tsv.x.data), [1.25, -2]);
  t.throws(() => parseCsv('a\n1\n', 'x', { delimiter: '"' }), { instanceOf: InvalidOptionError });
});

test('values equal Number(text) rounded to float32, long and short', (t) => {
  const vals = [
    '-1.3598071336738',
    '0.000000123456789',
    '123456789012345678901',
    '1.7976931348623157e-300',
    '3.4028234e38',
    '9007199254740993',
    '0.1',
    '-0',
  ];
  const ds = parseCsv(`v\n${vals.join('\n')}\n`, 'v.csv');
  t.deepEqual(
    Array.from(ds.x.data),
    vals.map((v) => Math.fround(Number(v))),
  );
});

test('loadCsv reads files in chunks: every chunk size gives the same dataset as parseCsv', (t) => {
  const rows = ['"Time","V1","note","Class"'];
  for (let i = 0; i < 40; i++) rows.push(`${i},${(i * 0.37 - 3).toFixed(5)},"x, ""y""\r\nz",${i % 3 === 0 ? '"1"' : '0'}`);
  const text = `\uFEFF${rows.join('\r\n')}\r\n`;
  const file = path.join(dir, 'chunks.csv');
  fs.writeFileSync(file, text);
  const opts = { label: 'Class', columns: ['V1', 'Time'] };
  const ref = parseCsv(text, file, opts);
  t.is(ref.x.rows, 40);
  t.deepEqual(loadCsv(file, opts), ref);
  for (const chunk of [1, 2, 3, 5, 7, 16, 31, 64, 1000]) t.deepEqual(readCsvFile(file, opts, chunk), ref, `chunk ${chunk}`);
  fs.writeFileSync(file, text.replace('\r\n5,', '\r\nz5,'));
  for (const chunk of [1, 7, 1 << 20]) {
    const err = t.throws(() => readCsvFile(file, opts, chunk), { instanceOf: DatasetError });
    // record i starts on line 2 + 2·i (the header is line 1, each record spans two lines)
    t.is(err?.message, `${file}: line 12, column 'Time': expected a number, got 'z5'.`);
  }
});

test('loadCsv: a missing file is ENOENT naming it', (t) => {
  const p = path.join(dir, 'absent.csv');
  const err = t.throws(() => loadCsv(p), { instanceOf: DatasetError });
  t.is(err?.code, 'ENOENT');
  t.true(err?.message.includes('absent.csv'));
});

test("labelType 'category': text labels map to sorted class indices; integers stay as they are; a fixed mapping refuses unknown labels", (t) => {
  const text = 'x;species\n1;versicolor\n2;setosa\n3; virginica\n4;setosa\n';
  const ds = parseCsv(text, 'iris.csv', { label: 'species', labelType: 'category', delimiter: ';' });
  t.deepEqual(ds.classNames, ['setosa', 'versicolor', 'virginica']);
  t.deepEqual(Array.from(ds.y!), [1, 0, 2, 0]);
  t.is(ds.classes, 3);
  t.deepEqual(Array.from(ds.x.data), [1, 2, 3, 4]);
  const ints = parseCsv('x,c\n1,2\n2,0\n', 'i.csv', { label: 'c', labelType: 'category' });
  t.is(ints.classNames, undefined);
  t.deepEqual(Array.from(ints.y!), [2, 0]);
  t.is(ints.classes, 3);
  const fixed = parseCsv('x,c\n1,b\n2,a\n', 'f.csv', { label: 'c', labelType: 'category', classNames: ['b', 'a', 'z'] });
  t.deepEqual(Array.from(fixed.y!), [0, 1]);
  t.is(fixed.classes, 3);
  const msg = csvError(
    t,
    () => parseCsv('x,c\n1,b\n2,q\n', 'f.csv', { label: 'c', labelType: 'category', classNames: ['a', 'b'] }),
    'ELABEL',
  );
  t.is(msg, "f.csv: line 3, column 'c': expected one of the classes 'a', 'b', got 'q'.");
});
