/* The fixed-odds page's arithmetic on prices, from the decimal digits the API sends
 * ("1.91"; a price no decimal writes, such as 8/13, arrives to six places). The prices'
 * texts are not made here: the server writes them with the domain's formats
 * (`moneyline_text`, docs/fixed-odds.md "Formats"), exact whatever the price.
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
