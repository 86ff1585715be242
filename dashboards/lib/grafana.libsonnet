// Small builders for Grafana dashboards (grafonnet cannot be fetched here).
//
// What every dashboard must have is enforced by construction, not by review:
// - every panel and every query point at the `datasource` template variable;
// - `description` and `unit` are parameters without defaults, and empty ones fail the render;
// - panels are placed by `dashboard()` from rows, so no gridPos is ever typed by hand.
// The output targets Grafana 10 (schemaVersion 39) and imports cleanly in 9.x.
local ds = { type: 'prometheus', uid: '${datasource}' };

local required(what, value) =
  assert std.isString(value) && std.length(std.stripChars(value, ' \n')) > 0 : what + ' must be a non-empty string';
  value;

local refIds = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ';

// Threshold steps from [value, color] pairs; the base step (below the first value) is `base`.
local steps(pairs, base) =
  { mode: 'absolute', steps: [{ color: base, value: null }] + [{ color: p[1], value: p[0] } for p in pairs] };

local panel(type, title, description, unit, targets, w, h, thresholds, base, min, max, decimals, mappings, custom, options, overrides) = {
  type: type,
  title: required('title', title),
  description: required('description of panel "%s"' % title, description),
  datasource: ds,
  targets: [
    targets[i] { refId: refIds[i] }
    for i in std.range(0, std.length(targets) - 1)
  ],
  fieldConfig: {
    defaults: {
      unit: required('unit of panel "%s"' % title, unit),
      thresholds: steps(thresholds, base),
      mappings: mappings,
      [if min != null then 'min']: min,
      [if max != null then 'max']: max,
      [if decimals != null then 'decimals']: decimals,
      [if custom != {} then 'custom']: custom,
    },
    overrides: overrides,
  },
  options: options,
  // Layout hints, read by dashboard() and not rendered.
  w:: w,
  h:: h,
  assert std.length(targets) > 0 : 'panel "%s" has no query' % title,
  assert std.length(targets) <= std.length(refIds) : 'panel "%s" has too many queries' % title,
};

local legendOptions = { displayMode: 'list', placement: 'bottom', showLegend: true, calcs: [] };

{
  datasource:: ds,
  steps:: steps,

  // A PromQL query.  `instant` for stats and tables: the latest value is what they show.
  query(expr, legend='', instant=false, format='time_series'):: {
    datasource: ds,
    expr: expr,
    legendFormat: legend,
    instant: instant,
    range: !instant,
    format: format,
  },

  // Value mappings for 0/1 state metrics: `up` style (1 good) or `bad` style (1 bad).
  upMappings(up='UP', down='DOWN'):: [{
    type: 'value',
    options: {
      '0': { text: down, color: 'red', index: 0 },
      '1': { text: up, color: 'green', index: 1 },
    },
  }],
  okMappings(ok='OK', bad='FAILED'):: self.upMappings(ok, bad),

  // An override setting one field's colour thresholds (e.g. the critical count of a stat panel).
  overrideThresholds(name, pairs, base='green'):: {
    matcher: { id: 'byName', options: name },
    properties: [{ id: 'thresholds', value: steps(pairs, base) }, { id: 'color', value: { mode: 'thresholds' } }],
  },

  // Lines over time.  `thresholds` ([value, color] pairs) are drawn as dashed lines: the
  // alert's threshold is visible on the graph it fires from.
  timeseries(title,
             description,
             unit,
             targets,
             w=8,
             h=8,
             thresholds=[],
             base='green',
             min=null,
             max=null,
             decimals=null,
             stack=false,
             fill=10,
             overrides=[],
             legendCalcs=[])::
    panel('timeseries', title, description, unit, targets, w, h, thresholds, base, min, max, decimals, [], {
      drawStyle: 'line',
      lineWidth: 1,
      fillOpacity: fill,
      showPoints: 'never',
      spanNulls: false,
      stacking: { mode: if stack then 'normal' else 'none', group: 'A' },
      thresholdsStyle: { mode: if thresholds == [] then 'off' else 'dashed' },
    }, {
      legend: legendOptions { calcs: legendCalcs, displayMode: if legendCalcs == [] then 'list' else 'table' },
      tooltip: { mode: 'multi', sort: 'desc' },
    }, overrides),

  // One big number per series, coloured by thresholds (base colour below the first one).
  stat(title,
       description,
       unit,
       targets,
       w=4,
       h=4,
       thresholds=[],
       base='green',
       mappings=[],
       min=null,
       max=null,
       decimals=null,
       colorMode='background',
       textMode='auto',
       graphMode='none',
       overrides=[])::
    panel('stat', title, description, unit, targets, w, h, thresholds, base, min, max, decimals, mappings, {}, {
      reduceOptions: { calcs: ['lastNotNull'], fields: '', values: false },
      colorMode: colorMode,
      graphMode: graphMode,
      textMode: textMode,
      justifyMode: 'auto',
      orientation: 'auto',
    }, overrides),

  // A dial against a known range (a ratio of a limit).
  gauge(title, description, unit, targets, w=4, h=6, thresholds=[], base='green', min=0, max=1, decimals=null)::
    panel('gauge', title, description, unit, targets, w, h, thresholds, base, min, max, decimals, [], {}, {
      reduceOptions: { calcs: ['lastNotNull'], fields: '', values: false },
      showThresholdMarkers: true,
      showThresholdLabels: false,
    }, []),

  // Latest values as rows: labels become columns; several queries are merged on their labels.
  table(title,
        description,
        unit,
        targets,
        w=12,
        h=8,
        thresholds=[],
        base='green',
        mappings=[],
        overrides=[],
        sortBy=[],
        hide=['Time'])::
    panel('table',
          title,
          description,
          unit,
          [t { instant: true, range: false, format: 'table' } for t in targets],
          w,
          h,
          thresholds,
          base,
          null,
          null,
          null,
          mappings,
          { align: 'auto', cellOptions: { type: 'auto' } },
          {
            showHeader: true,
            cellHeight: 'sm',
            footer: { show: false, reducer: ['sum'], fields: '' },
            sortBy: sortBy,
          },
          overrides) {
      transformations: (if std.length(targets) > 1 then [{ id: 'merge', options: {} }] else []) + [{
        id: 'organize',
        options: { excludeByName: { [f]: true for f in hide }, indexByName: {}, renameByName: {} },
      }],
    },

  // A row of panels.  Rows are laid out in the order given: put symptoms first, causes last.
  row(title, panels, collapsed=false):: { title: required('row title', title), panels: panels, collapsed: collapsed },

  // ---------------------------------------------------------------- template variables
  datasourceVariable():: {
    name: 'datasource',
    label: 'Data source',
    type: 'datasource',
    query: 'prometheus',
    current: {},
    hide: 0,
    refresh: 1,
    regex: '',
    options: [],
  },

  // A variable of label values; `all` matches everything with `.*`, so queries use `=~"$name"`.
  queryVariable(name, label, metricSelector, labelName, multi=true, description='')::
    local q = 'label_values(%s, %s)' % [metricSelector, labelName];
    {
      name: name,
      label: label,
      description: description,
      type: 'query',
      datasource: ds,
      definition: q,
      query: { query: q, refId: 'PrometheusVariableQueryEditor-VariableQuery', qryType: 1 },
      current: {},
      hide: 0,
      includeAll: true,
      allValue: '.*',
      multi: multi,
      refresh: 2,  // on time range change: targets come and go
      regex: '',
      sort: 1,
      options: [],
    },

  // ---------------------------------------------------------------- the dashboard
  // Panels flow left to right in a 24-column grid, wrapping to a new line when full;
  // every row starts on its own line.  Ids are assigned in order, so they are stable.
  local layout(rows) =
    std.foldl(
      function(acc, r)
        local rowPanel = { type: 'row', title: r.title, collapsed: r.collapsed, id: acc.id, gridPos: { h: 1, w: 24, x: 0, y: acc.y }, panels: [] };
        local placed = std.foldl(
          function(a, p)
            local wrap = a.x + p.w > 24;
            local x = if wrap then 0 else a.x;
            local y = if wrap then a.y + a.h else a.y;
            {
              x: x + p.w,
              y: y,
              h: if wrap then p.h else std.max(a.h, p.h),
              id: a.id + 1,
              panels: a.panels + [p { id: a.id, gridPos: { h: p.h, w: p.w, x: x, y: y } }],
            },
          r.panels,
          { x: 0, y: acc.y + 1, h: 0, id: acc.id + 1, panels: [] },
        );
        { y: placed.y + placed.h, id: placed.id, panels: acc.panels + [rowPanel] + placed.panels },
      rows,
      { y: 0, id: 1, panels: [] },
    ).panels,

  dashboard(uid, title, description, rows, variables, tags=[], time='now-6h', refresh='1m'):: {
    uid: required('uid', uid),
    title: required('title', title),
    description: required('description', description),
    tags: ['stack-exporter'] + tags,
    editable: true,
    graphTooltip: 1,  // shared crosshair: "since when" lines up across panels
    timezone: 'browser',
    refresh: refresh,
    time: { from: time, to: 'now' },
    timepicker: {},
    schemaVersion: 39,
    version: 1,
    fiscalYearStartMonth: 0,
    liveNow: false,
    weekStart: '',
    links: [{
      title: 'stack-exporter dashboards',
      type: 'dashboards',
      tags: ['stack-exporter'],
      asDropdown: true,
      includeVars: true,
      keepTime: true,
      icon: 'external link',
      targetBlank: false,
      tooltip: '',
      url: '',
    }],
    annotations: {
      list: [{
        builtIn: 1,
        datasource: { type: 'grafana', uid: '-- Grafana --' },
        enable: true,
        hide: true,
        iconColor: 'rgba(0, 211, 255, 1)',
        name: 'Annotations & Alerts',
        type: 'dashboard',
      }],
    },
    templating: { list: [$.datasourceVariable()] + variables },
    panels: layout(rows),
  },
}
