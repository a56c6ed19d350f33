// AXIOM-25 Matrix calculator: parses the matrices, calls POST /api/v1/matrix/{op} and shows the
// answer, the time it took and its trace. Served from the gateway itself (the CSP allows no other).
'use strict';
(function () {
  const $ = (id) => document.getElementById(id);
  const form = $('calc');
  if (!form) return;
  const op = $('op'), kind = $('kind'), button = $('compute');
  const result = $('result'), elapsed = $('elapsed'), formError = $('form-error');
  const trace = $('trace'), traceLink = $('trace-link'), apiKey = $('api-key');
  const KEY_STORE = 'axiom25.apiKey';
  const NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i;
  const FIELDS = ['a', 'b', 'kind'];

  const needsB = () => op.value === 'multiply' || op.value === 'solve';
  function sync() {
    $('b-field').hidden = !needsB();
    $('kind-field').hidden = op.value !== 'decompose';
  }

  function setError(field, text) {
    const target = $(field + '-error');
    target.textContent = text;
    const input = $(field);
    if (text) input.setAttribute('aria-invalid', 'true'); else input.removeAttribute('aria-invalid');
  }
  function clearErrors() {
    FIELDS.forEach((field) => setError(field, ''));
    formError.textContent = '';
  }

  // A matrix from JSON ([[1, 2], [3, 4]]) or rows split by ';' or new lines, values by spaces or commas.
  function parseMatrix(text) {
    const source = text.trim();
    if (!source) throw new Error('Enter a matrix, e.g. 1 2; 3 4');
    let rows;
    if (source.startsWith('[')) {
      try { rows = JSON.parse(source); } catch (e) { throw new Error('Not valid JSON: ' + e.message); }
      if (!Array.isArray(rows) || !rows.every(Array.isArray)) throw new Error('JSON must be an array of rows, e.g. [[1, 2], [3, 4]]');
      rows.forEach((row, i) => row.forEach((value, j) => {
        if (typeof value !== 'number' || !Number.isFinite(value)) {
          throw new Error('Row ' + (i + 1) + ', value ' + (j + 1) + ' is not a finite number');
        }
      }));
    } else {
      rows = source.split(/[;\n]/).map((row) => row.trim()).filter((row) => row !== '').map((row, i) =>
        row.split(/[\s,]+/).filter((v) => v !== '').map((value, j) => {
          if (!NUMBER.test(value) || !Number.isFinite(Number(value))) {
            throw new Error('Row ' + (i + 1) + ', value ' + (j + 1) + ': "' + value + '" is not a number');
          }
          return Number(value);
        }));
    }
    if (rows.length === 0 || rows[0].length === 0) throw new Error('A matrix needs at least one value');
    rows.forEach((row, i) => {
      if (row.length !== rows[0].length) {
        throw new Error('Row ' + (i + 1) + ' has ' + row.length + ' values, row 1 has ' + rows[0].length);
      }
    });
    return rows;
  }

  function formatNumber(x) {
    if (x === null || x === undefined) return '—';
    if (Object.is(x, -0)) return '0';
    if (Number.isInteger(x) && Math.abs(x) < 1e15) return String(x);
    return String(Number(x.toPrecision(6)));
  }
  function el(tag, text, className) {
    const node = document.createElement(tag);
    if (text !== undefined) node.textContent = text;
    if (className) node.className = className;
    return node;
  }
  function table(rows, caption) {
    const t = el('table');
    const cols = rows.length ? rows[0].length : 0;
    t.appendChild(el('caption', caption + ' (' + rows.length + '×' + cols + ')'));
    const body = t.appendChild(el('tbody'));
    rows.forEach((row) => {
      const tr = body.appendChild(el('tr'));
      row.forEach((value) => tr.appendChild(el('td', formatNumber(value))));
    });
    return t;
  }

  const ANALYSIS = [
    ['rows', 'Rows'], ['cols', 'Columns'], ['rank', 'Rank'], ['frobenius_norm', 'Frobenius norm'],
    ['condition_number', 'Condition number (2-norm)'], ['symmetric', 'Symmetric'], ['trace', 'Trace'],
    ['determinant', 'Determinant'],
  ];
  function render(data) {
    result.replaceChildren();
    if (Array.isArray(data.result)) {
      result.appendChild(table(data.result, 'Result'));
    } else if ('value' in data) {
      const p = el('p', '', 'scalar');
      p.appendChild(el('output', formatNumber(data.value)));
      result.appendChild(p);
    } else if (data.factors) {
      Object.keys(data.factors).forEach((name) => {
        const figure = result.appendChild(el('figure'));
        figure.appendChild(table(data.factors[name], name));
      });
    } else {
      const dl = result.appendChild(el('dl'));
      ANALYSIS.forEach(([key, label]) => {
        if (!(key in data)) return;
        let value = data[key];
        if (typeof value === 'boolean') value = value ? 'yes' : 'no';
        else if (value === null) value = key === 'condition_number' ? '∞ (singular)' : '— (not square)';
        else value = formatNumber(value);
        dl.appendChild(el('dt', label));
        dl.appendChild(el('dd', value));
      });
    }
  }

  // A problem+json pointer such as /a/1/2 names the field at fault by its first segment.
  function showProblem(problem, status) {
    const detail = (problem && (problem.detail || problem.title)) || 'The request failed with HTTP ' + status;
    const field = problem && typeof problem.pointer === 'string' ? problem.pointer.split('/')[1] : '';
    const visible = FIELDS.includes(field) && !$(field).closest('[hidden]');
    if (visible) {
      setError(field, detail);
      $(field).focus();
    } else {
      formError.textContent = detail;
    }
    result.replaceChildren(el('p', 'No result: HTTP ' + status + '.', 'hint'));
  }

  op.addEventListener('change', () => { sync(); clearErrors(); });
  FIELDS.forEach((field) => $(field).addEventListener('input', () => setError(field, '')));
  if (apiKey) apiKey.value = sessionStorage.getItem(KEY_STORE) || '';
  // Enter in a textarea starts a new row; Ctrl+Enter (⌘+Enter) computes from the keyboard.
  ['a', 'b'].forEach((field) => $(field).addEventListener('keydown', (event) => {
    if (event.key === 'Enter' && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      form.requestSubmit();
    }
  }));

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    clearErrors();
    const body = {};
    let invalid = null;
    const read = (field) => {
      try { body[field] = parseMatrix($(field).value); } catch (e) { setError(field, e.message); invalid = invalid || field; }
    };
    read('a');
    if (needsB()) read('b');
    if (op.value === 'decompose') body.kind = kind.value;
    if (invalid) { $(invalid).focus(); return; }

    const headers = { 'content-type': 'application/json', accept: 'application/json' };
    if (apiKey) {
      const key = apiKey.value.trim();
      if (key) { headers.authorization = 'Bearer ' + key; sessionStorage.setItem(KEY_STORE, key); } else sessionStorage.removeItem(KEY_STORE);
    }
    button.disabled = true;
    result.setAttribute('aria-busy', 'true');
    const started = performance.now();
    try {
      const response = await fetch('/api/v1/matrix/' + encodeURIComponent(op.value), {
        method: 'POST', headers, body: JSON.stringify(body),
      });
      let data = null;
      try { data = await response.json(); } catch (e) { data = null; }
      elapsed.textContent = 'Took ' + (performance.now() - started).toFixed(1) + ' ms';
      const id = response.headers.get('x-trace-id');
      if (id && /^[0-9a-f]{32}$/.test(id)) {
        traceLink.href = '/ops/traces/' + id;
        traceLink.textContent = id;
        trace.hidden = false;
      } else {
        trace.hidden = true;
      }
      if (response.ok && data) render(data); else showProblem(data, response.status);
    } catch (e) {
      elapsed.textContent = '';
      trace.hidden = true;
      formError.textContent = 'The gateway could not be reached: ' + e.message;
    } finally {
      button.disabled = false;
      result.removeAttribute('aria-busy');
    }
  });
  sync();
})();
