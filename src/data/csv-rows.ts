/** The data rows of a CSV file: each record's features and label parsed, checked and collected into a dataset. */
import { DatasetError } from '../errors.js';
import type { CsvDataset, CsvOptions } from './csv.js';
import { NONFINITE_RE, type Scanner } from './csv-scanner.js';
import type { Dataset } from './dataset.js';
import { MAX_CLASSES } from './limits.js';

/** Where things are in every record. */
export interface RecordLayout {
  /** The column names. */
  readonly names: readonly string[];
  readonly hasHeader: boolean;
  /** The line of the header (or of the first record, without one). */
  readonly headerLine: number;
  /** Fields every record must have. */
  readonly fields: number;
  /** The label column, or −1. */
  readonly labelIndex: number;
  readonly featureIndices: readonly number[];
}

/** Growable typed array. */
class Column<T extends Float32Array | Int32Array> {
  length = 0;
  constructor(
    public data: T,
    private readonly make: (n: number) => T,
  ) {}
  reserve(extra: number): void {
    if (this.length + extra <= this.data.length) return;
    const bigger = this.make(Math.max(this.data.length * 2, this.length + extra, 1024));
    bigger.set(this.data.subarray(0, this.length));
    this.data = bigger;
  }
  done(): T {
    return this.data.slice(0, this.length) as T;
  }
}

/** Collects the records the scanner holds, one {@link add} per record, into a {@link CsvDataset}. */
export class RowCollector {
  private readonly name: string;
  private readonly labelType: 'class' | 'number' | 'category';
  private readonly fixedClasses: Map<string, number> | undefined;
  private readonly features = new Column(new Float32Array(0), (n) => new Float32Array(n));
  private readonly classLabels = new Column(new Int32Array(0), (n) => new Int32Array(n));
  private readonly numberLabels = new Column(new Float32Array(0), (n) => new Float32Array(n));
  private readonly labelTexts: string[] = [];
  private classes = 0;
  private rows = 0;

  constructor(
    private readonly scanner: Scanner,
    private readonly layout: RecordLayout,
    private readonly options: CsvOptions,
  ) {
    this.name = scanner.name;
    this.labelType = options.labelType ?? 'class';
    this.fixedClasses = options.classNames === undefined ? undefined : new Map(options.classNames.map((text, i) => [text, i]));
  }

  /** Parses and checks the scanner's current record. */
  add(): void {
    const { scanner, layout, name } = this;
    if (scanner.nFields !== layout.fields) {
      const where = layout.hasHeader ? `in the header on line ${layout.headerLine}` : `on line ${layout.headerLine}`;
      throw new DatasetError(
        `${name}: line ${scanner.recordLine}: expected ${layout.fields} fields (as ${where}), got ${scanner.nFields}.`,
        'ERAGGED',
        name,
      );
    }
    const columns = layout.featureIndices;
    const features = this.features;
    features.reserve(columns.length);
    const out = features.data;
    let at = features.length;
    for (let j = 0; j < columns.length; j++) out[at++] = this.value(columns[j]!, 'a number');
    features.length = at;
    if (layout.labelIndex >= 0) this.addLabel(layout.labelIndex);
    this.rows++;
  }

  private addLabel(column: number): void {
    if (this.labelType === 'category') {
      const text = this.scanner.text(column).trim();
      if (text === '') this.bad(column, 'a class label', 'EMISSING');
      if (this.fixedClasses === undefined) {
        this.labelTexts.push(text);
        return;
      }
      const label = this.fixedClasses.get(text);
      if (label === undefined) this.bad(column, `one of the classes ${listColumns(this.options.classNames!)}`, 'ELABEL');
      this.classLabels.reserve(1);
      this.classLabels.data[this.classLabels.length++] = label!;
    } else if (this.labelType === 'class') {
      const label = this.value(column, 'an integer class label ≥ 0');
      if (!Number.isInteger(label) || label < 0 || label > 0x7fffffff) this.bad(column, 'an integer class label ≥ 0', 'ELABEL');
      if (label >= MAX_CLASSES) this.bad(column, `a class label below ${MAX_CLASSES} (MAX_CLASSES)`, 'ELABEL');
      this.classLabels.reserve(1);
      this.classLabels.data[this.classLabels.length++] = label;
      if (label + 1 > this.classes) this.classes = label + 1;
    } else {
      this.numberLabels.reserve(1);
      this.numberLabels.data[this.numberLabels.length++] = this.value(column, 'a number');
    }
  }

  /** Field `column` of the current record as a finite float32 number, or a typed error. */
  private value(column: number, expected: string): number {
    const value = this.scanner.number(column);
    if (Number.isNaN(value)) this.bad(column, expected, NONFINITE_RE.test(this.scanner.text(column).trim()) ? 'ENONFINITE' : 'ENONNUMERIC');
    if (!Number.isFinite(Math.fround(value))) this.bad(column, `${expected} within the float32 range`, 'ENONFINITE');
    return value;
  }

  private bad(column: number, expected: string, code: string): never {
    const { scanner, name } = this;
    const text = scanner.text(column);
    const where = `${name}: line ${scanner.lines[column]!}`;
    const columnName = this.layout.names[column]!;
    if (text.trim() === '') {
      throw new DatasetError(
        `${where} (data row ${this.rows + 1}), column '${columnName}': missing value (an empty cell); expected ${expected}.`,
        'EMISSING',
        name,
      );
    }
    throw new DatasetError(`${where}, column '${columnName}': expected ${expected}, got ${show(text)}.`, code, name);
  }

  /** The dataset of every record added. */
  finish(): CsvDataset {
    const { rows, name, layout, options } = this;
    if (rows === 0) {
      throw new DatasetError(
        `${name}: no data rows${layout.hasHeader ? ` after the header on line ${layout.headerLine}` : ''}.`,
        'EEMPTY',
        name,
      );
    }
    const featureNames = layout.featureIndices.map((k) => layout.names[k]!);
    const dataset: Dataset = { x: { rows, cols: featureNames.length, data: this.features.done() }, featureNames, source: `csv:${name}` };
    if (layout.labelIndex < 0) return dataset;
    const labelName = options.label!;
    if (this.labelType === 'number') return { ...dataset, y: this.numberLabels.done(), labelName };
    if (this.labelType === 'class') return { ...dataset, y: this.classLabels.done(), classes: this.classes, labelName };
    if (options.classNames !== undefined) {
      return { ...dataset, y: this.classLabels.done(), classes: options.classNames.length, classNames: options.classNames, labelName };
    }
    const found = categories(this.labelTexts);
    if (found.classes > MAX_CLASSES) {
      throw new DatasetError(
        `${name}: column '${labelName}' names ${found.classes} classes; at most ${MAX_CLASSES} (MAX_CLASSES) are supported.`,
        'ELABEL',
        name,
      );
    }
    return { ...dataset, ...found, labelName };
  }
}

/** Class indices for label texts: the integers themselves when every label is an integer ≥ 0, else indices into the sorted distinct texts. */
function categories(texts: readonly string[]): { y: Int32Array; classes: number; classNames?: readonly string[] } {
  const y = new Int32Array(texts.length);
  if (texts.every((t) => /^\d{1,9}$/.test(t))) {
    let classes = 0;
    texts.forEach((t, i) => {
      y[i] = Number(t);
      classes = Math.max(classes, y[i]! + 1);
    });
    return { y, classes };
  }
  const names = [...new Set(texts)].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const index = new Map(names.map((n, i) => [n, i]));
  texts.forEach((t, i) => (y[i] = index.get(t)!));
  return { y, classes: names.length, classNames: names };
}
function show(t: string): string {
  const s = t.length > 40 ? `${t.slice(0, 40)}…` : t;
  return `'${s}'`;
}

/** Column names for a message (the first 60). */
export function listColumns(names: readonly string[]): string {
  const shown = names
    .slice(0, 60)
    .map((n) => `'${n}'`)
    .join(', ');
  return names.length > 60 ? `${shown}, … (${names.length} in all)` : shown;
}
