/**
 * A number as a reader compares it: four significant digits, trailing zeros kept so a column
 * reads evenly (171.9, 180.0, 0.05447), whole numbers in full (1000 images, epoch 15), and
 * exponent notation only where a magnitude needs it (1.235e-7), not for 123500.
 */
export function significant(value: number, digits = 4): string {
  if (!Number.isFinite(value)) return String(value);
  if (Number.isInteger(value) && Math.abs(value) < 1e15) return String(value);
  const text = value.toPrecision(digits);
  const magnitude = Math.abs(Number(text));
  return text.includes('e') && magnitude >= 1e-4 && magnitude < 1e15 ? String(Number(text)) : text;
}
