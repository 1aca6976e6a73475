/* How the fixed-odds page writes prices: the domain's formats (docs/fixed-odds.md,
 * "Formats"), computed exactly from the decimal digits the API sends ("1.91", "8/13"
 * never arrives: every price the API takes terminates).
 *
 * A price is held as an integer fraction num/den, den a power of ten: at most six
 * decimal places and odds up to 10001, so num is below 2^53 and the arithmetic is exact.
 */

/** "1.91" → { num: 191, den: 100 }; null for anything that is not plain decimal digits. */
export function parseDecimal(text) {
  const match = /^(\d+)(?:\.(\d{1,6}))?$/.exec(String(text));
  if (!match) return null;
  const places = match[2] || "";
  const den = 10 ** places.length;
  return { num: Number(match[1]) * den + Number(places || "0"), den };
}

function gcd(a, b) {
  while (b) [a, b] = [b, a % b];
  return a;
}

/** Decimal odds as the domain's decimal_str shows them: every digit, at least two
 *  places ("2" → "2.00", "1.8" → "1.80", "1.905" → "1.905"). */
export function decimalText(text) {
  const [whole, places = ""] = String(text).split(".");
  return `${whole}.${places.padEnd(2, "0")}`;
}

/** Fractional odds (decimal − 1) as the domain's fractional_str: the exact reduced
 *  fraction, never rounded ("1.91" → "91/100", "2.5" → "3/2", evens "1/1"). */
export function fractionalText(text) {
  const price = parseDecimal(text);
  if (!price) return "—";
  const num = price.num - price.den;
  const g = gcd(num, price.den);
  return `${num / g}/${price.den / g}`;
}

/** The book percentage of a money line, 100 × Σ 1/decimal, to one place: a display in
 *  floating point (the domain's book_percentage is the exact figure). */
export function bookText(prices) {
  let sum = 0;
  for (const text of prices) {
    const price = parseDecimal(text);
    if (!price) return "—";
    sum += price.den / price.num;
  }
  return `${(sum * 100).toFixed(1)}%`;
}

/** A number for comparing prices (to tint a move): never shown. */
export function priceValue(text) {
  const price = parseDecimal(text);
  return price ? price.num / price.den : null;
}
