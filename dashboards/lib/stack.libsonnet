// What every stack-exporter dashboard shares: selectors with the template variables
// applied, the job, instance and target variables.  Settings come from the rule pack's
// config (rules/config.libsonnet), so a dashboard filters and colours exactly what
// the alerts look at.
local promql = import '../../rules/lib/promql.libsonnet';
local g = import 'grafana.libsonnet';

local strip(x) = std.stripChars(x, ' \t\n');

// A selector's matchers, split on the commas outside quoted values
// ('job="x", path=~"a,b"' -> ['job="x"', 'path=~"a,b"']).
local matchers(selector) =
  local r = std.foldl(
    function(acc, ch)
      if acc.esc then acc { cur+: ch, esc: false }
      else if acc.q != '' && ch == '\\' then acc { cur+: ch, esc: true }
      else if acc.q != '' && ch == acc.q then acc { cur+: ch, q: '' }
      else if acc.q == '' && (ch == '"' || ch == "'" || ch == '`') then acc { cur+: ch, q: ch }
      else if acc.q == '' && ch == ',' then acc { parts+: [acc.cur], cur: '' }
      else acc { cur+: ch },
    std.stringChars(selector),
    { parts: [], cur: '', q: '', esc: false },
  );
  [strip(p) for p in r.parts + [r.cur] if strip(p) != ''];

// One matcher as { label, op, value } (value: the text between the quotes, still escaped).
local parse(m) =
  local at = [i for i in std.range(0, std.length(m) - 1) if m[i] == '=' || m[i] == '!'];
  assert at != [] : 'not a label matcher: ' + m;
  local i = at[0];
  local op = if m[i] == '!' then m[i:i + 2] else if i + 1 < std.length(m) && m[i + 1] == '~' then '=~' else '=';
  local quoted = strip(m[i + std.length(op):]);
  { label: strip(m[:i]), op: op, value: quoted[1:std.length(quoted) - 1] };

// PromQL string escapes undone: the value Grafana should hold.
local unescape(v) = std.strReplace(std.strReplace(v, '\\"', '"'), '\\\\', '\\');

// A regex that is only literal names joined by | (dots escaped or not) lists its values;
// anything else (`stack-.*`) cannot be a list of choices.
local plain = std.stringChars('abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-:/@ ');
local isLiteral(a) = a != '' && std.length([c for c in std.stringChars(std.strReplace(a, '\\.', '')) if !std.member(plain, c)]) == 0;
local literals(regex) =
  local alternatives = std.split(regex, '|');
  if std.length([a for a in alternatives if !isLiteral(a)]) == 0
  then [std.strReplace(a, '\\.', '.') for a in alternatives]
  else null;

// A selector split into its job matcher (`job=` or `job=~`; negative ones stay fixed) and
// the other matchers, which every query keeps as they are.
local splitJob(selector) =
  local all = matchers(selector);
  local isJob(m) = local p = parse(m); p.label == 'job' && (p.op == '=' || p.op == '=~');
  local jobs = [parse(m) for m in all if isJob(m)];
  {
    rest: [m for m in all if !isJob(m)],
    job: if jobs == [] then null else jobs[0],
    assert std.length(jobs) <= 1 : 'more than one job matcher in ' + selector,
  };

{
  num:: promql.num,
  matchers:: matchers,
  splitJob:: splitJob,
  labelOf(matcher):: parse(matcher).label,

  // `{<selector>, instance=~"$instance", target=~"$target"}` (empty parts dropped).
  sel(selector, extra=[], target=true, instance=true)::
    promql.sel([selector]
               + (if instance then ['instance=~"$instance"'] else [])
               + (if target then ['target=~"$target"'] else [])
               + extra),

  // ---------------------------------------------------------------- job variables
  // The rule pack's selectors name the scrape jobs (`job="stack-exporter"`); the dashboards
  // choose them with a variable instead, defaulting to that job, so nothing is hard-coded
  // and another job is one click away.  Only the job matcher is replaced: other matchers of
  // the selector (`namespace="y"`) stay in every query.
  //
  // The default: the job's value (`=`), or each name of a `=~"a|b"` list; a regex that is
  // no list (`=~"stack-.*"`) becomes the variable's All value, selected by default.
  jobVariable(name, label, metric, selector, description)::
    local j = splitJob(selector);
    local values =
      if j.job == null then null
      else if j.job.op == '=' then [unescape(j.job.value)]
      else literals(unescape(j.job.value));
    local matcherText = if j.job == null then 'none' else 'job%s"%s"' % [j.job.op, j.job.value];
    local series = if j.rest == [] then metric else '%s{%s}' % [metric, std.join(', ', j.rest)];
    g.queryVariable(name, label, series, 'job', description="%s Defaults to the rule pack's %s." % [description, matcherText]) + {
      current:
        if values == null then { selected: true, text: ['All'], value: ['$__all'] }
        else { selected: true, text: values, value: values },
      allValue: if values == null && j.job != null then j.job.value else '.*',
    },

  // A source of a dashboard: its selector from the config, with the job matcher replaced by
  // a variable.  Sources whose job is the exporter's (the default of every per-source
  // selector) share the `job` variable, so it carries over between dashboards; a source
  // configured with another job (probes from blackbox_exporter) gets `<key>_job`.
  // `shared=false` always gives the source its own variable (node_exporter, the app).
  source(config, key, selector, metric, label, description, shared=true)::
    local exporter = splitJob(config.exporterSelector).job;
    local own = splitJob(selector);
    local same = shared && own.job == exporter;
    local name = if same then 'job' else key + '_job';
    {
      key: key,
      varName: name,
      rest: own.rest,
      hasJob: own.job != null,
      // the config's selector with `job=~"$<variable>"` in place of its job matcher
      selector: std.join(', ', own.rest + ['job=~"$%s"' % name]),
      variable:
        if same then $.exporterSource(config).variable
        else $.jobVariable(name, label, metric, selector, description),
    },

  // The exporter's own job: `job`, read from stack_exporter_build_info.
  exporterSource(config):: {
    local own = splitJob(config.exporterSelector),
    key: 'exporter',
    varName: 'job',
    rest: own.rest,
    hasJob: own.job != null,
    selector: std.join(', ', own.rest + ['job=~"$job"']),
    variable: $.jobVariable('job',
                            'Exporter job',
                            'stack_exporter_build_info',
                            config.exporterSelector,
                            "stack-exporter's scrape job(s)."),
  },

  // The job variables of the given sources, each once, in order.
  jobVariables(sources)::
    std.foldl(
      function(acc, src) if std.member([v.name for v in acc], src.variable.name) then acc else acc + [src.variable],
      sources,
      [],
    ),

  // ---------------------------------------------------------------- instance and target
  // The exporter's instance (several exporters may watch several stacks).
  instanceVariable(metric, selector, label='Instance', description='')::
    g.queryVariable('instance', label, '%s{%s}' % [metric, selector], 'instance', description=description),

  // Targets (the `name` of a configured target) of the given collectors, on the chosen instances.
  targetVariable(collectors, selector, description='')::
    g.queryVariable(
      'target',
      'Target',
      'stack_exporter_collector_success{%s, collector=~"%s", instance=~"$instance"}' % [selector, std.join('|', collectors)],
      'target',
      description=description,
    ),
}
