// Small PromQL builders shared by the alert and recording files.
{
  // `a,b` from a list of label names, for by (...) / on (...).
  labels(list):: std.join(', ', list),

  // Join matchers, skipping empty ones: sel(['job="x"', '', 'a="b"']) -> '{job="x", a="b"}'.
  sel(matchers):: '{' + std.join(', ', [m for m in matchers if m != '']) + '}',

  // Copy the first non-empty label of `from` into `to`.  label_replace leaves a
  // series alone when the source label is empty (`(.+)` needs a character), and a
  // later replacement overwrites an earlier one: so the list is applied in reverse
  // and the first listed label wins when a series has several.
  normalise(expr, to, from)::
    std.foldl(
      function(acc, label) 'label_replace(%s, "%s", "$1", "%s", "(.+)")' % [acc, to, label],
      std.reverse(from),
      expr,
    ),

  // A number as PromQL text, the same whichever jsonnet renders it: integers without a
  // fraction, others with %g (plain `%s` prints 0.05 as 0.050000000000000003 in some versions).
  num(x):: if x == std.floor(x) then '%d' % x else '%g' % x,

  // A fraction as a percentage for annotations: 0.05 -> "5%".
  pct(x):: $.num(x * 100) + '%',
}
