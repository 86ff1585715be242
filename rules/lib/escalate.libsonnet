// The escalation pattern, one function for every alert that means "users are affected
// now": an alert still firing after a longer `for` is repeated under the same name as a
// critical with `escalated="true"`, so Alertmanager's escalated route sends it by SMS too.
// Both copies fire together once escalated.  A warning's escalated copy is its first page
// (the critical route), and the inhibit rule "critical mutes warning" silences the warning
// twin.  A critical's copy stays critical: it joins the same notification groups as its twin
// (group_by has no `escalated`), so PagerDuty and Slack see one incident, and only the SMS
// route, which matches `escalated`, gets something new.  Same name, so dashboards, silences
// and runbook links keep treating the two as one alert.
{
  // Seconds of a Prometheus duration ('90s', '15m', '1h30m', '1d').
  local seconds(d) =
    local units = { ms: 0.001, s: 1, m: 60, h: 3600, d: 86400, w: 604800, y: 31536000 };
    local term(acc) =
      assert acc.num != '' && std.objectHas(units, acc.unit) : 'not a Prometheus duration: %s' % d;
      acc.total + std.parseInt(acc.num) * units[acc.unit];
    local done = std.foldl(
      function(acc, ch)
        if !std.member('0123456789', ch) then acc { unit+: ch }
        else if acc.unit != '' then { total: term(acc), num: ch, unit: '' }
        else acc { num+: ch },
      std.stringChars(d),
      { total: 0, num: '', unit: '' },
    );
    term(done),

  seconds:: seconds,

  // [rule, its escalated copy]; just [rule] when `longerFor` is null (escalation off).
  // `longerFor` counts from the moment the condition started, like the rule's own `for`,
  // and must be longer: an escalation due with the first page would send the SMS at once.
  escalate(rule, longerFor)::
    local own = if std.objectHas(rule, 'for') then rule['for'] else '0s';
    if longerFor == null then [rule] else
      assert seconds(longerFor) > seconds(own) :
             "%s: the escalation (%s) must come after the alert's own for (%s)" % [rule.alert, longerFor, own];
      [
        rule,
        rule {
          'for': longerFor,
          labels+: { severity: 'critical', escalated: 'true' },
        },
      ],
}
