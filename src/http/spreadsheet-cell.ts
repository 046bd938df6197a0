/**
 * CSV cells that spreadsheets open: text starting with = + - @ (or a tab or CR) must not run as a
 * formula, so it gets a leading quote as csv-stringify's escape_formulas does; but a negative amount
 * such as a margin of -1.50 is a number and stays one (escape_formulas would quote it too).
 */

const FORMULA_START = /^[=+\-@\t\r]/;
const DECIMAL = /^-?\d+(\.\d+)?$/;

export const spreadsheetCell = (v: string): string => (FORMULA_START.test(v) && !DECIMAL.test(v) ? `'${v}` : v);
