#!/usr/bin/env python3
"""Writes tests/chat/jinja-cases.json: small Jinja templates with what Python's jinja2
renders for them in transformers' environment (the same one as the fixtures'
render.py). test-jinja runs every case through slmops' engine and compares.

Run it again after adding a case (python3 with jinja2 3.1.x):
    python3 tests/chat/make-cases.py > tests/chat/jinja-cases.json
Each case: {"name", "template", "vars"?} and then "expect" (the text) or "error"
(the exception as "Type: message"; "exact": true when slmops must say the same)."""
import copy, datetime, json, sys
import jinja2
from jinja2.ext import Extension, loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment


class Generation(Extension):
    tags = {"generation"}

    def parse(self, parser):
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(["name:endgeneration"], drop_needle=True)
        return jinja2.nodes.CallBlock(self.call_method("_render"), [], [], body).set_lineno(lineno)

    def _render(self, caller):
        return caller()


def env():
    def raise_exception(msg):
        raise jinja2.exceptions.TemplateError(msg)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators,
                          sort_keys=sort_keys)

    e = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                      extensions=[Generation, loopcontrols])
    e.filters["tojson"] = tojson
    e.globals["raise_exception"] = raise_exception
    day = datetime.datetime(2026, 1, 15)
    e.globals["strftime_now"] = lambda fmt: day.strftime(fmt)
    return e


MESSAGES = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Hi, ça va? 你好"},
    {"role": "assistant", "content": "Fine.",
     "tool_calls": [{"id": "c1", "type": "function",
                     "function": {"name": "f", "arguments": {"b": 2, "a": [1, 2.5, None, True]}}}]},
    {"role": "tool", "content": "{\"ok\": true}"},
    {"role": "user", "content": "  And now?\n"},
]
VARS = {
    "s": "Hello, World", "u": "ünïcödé ß", "n": 7, "f": 2.5, "neg": -3, "t": True, "no": False,
    "z": None, "l": [3, 1, 2], "words": ["b", "A", "c", "a"], "d": {"b": 1, "a": 2, "items": 3},
    "nested": {"x": {"y": [10, 20, {"z": "deep"}]}},
    "people": [{"name": "Ann", "age": 30, "city": "Oslo"}, {"name": "bob", "age": 25},
               {"name": "Cy", "age": 30, "city": "Rome"}],
    "empty": [], "es": "", "ml": "line one\n\nline three\n",
    "q": "it's \"quoted\"\t\\ and \x01", "big": 123456789012345678, "tiny": 1e-7,
    "floats": [0.1, 1.0, 1e16, 1e-5, 123.456, -0.0, 3.0e20],
}

# (name, template) or (name, template, extra vars)
CASES = [
    # whitespace control
    ("trim_blocks", "{% if true %}\nyes\n{% endif %}\nafter\n"),
    ("lstrip_blocks", "a\n    {% if true %}\n    x\n    {% endif %}\nb"),
    ("minus_marks", "a  {{- ' b ' -}}  c\n  {%- if true -%}  d  {%- endif -%}  e"),
    ("plus_marks", "a\n    {%+ if true %}x{% endif +%}\ny"),
    ("comment_ws", "a\n  {# note #}\nb {#- x -#} c\n{#+ y #}\nd"),
    ("var_no_lstrip", "a\n    {{ 'v' }}\nb"),
    ("raw", "{% raw %}{{ not parsed }}{% endraw %}|{%- raw -%}  x  {%- endraw -%}|"),
    ("trailing_newline", "x\n"),
    ("two_trailing_newlines", "x\n\n"),
    ("crlf", "a\r\n{% if true %}\r\nb\r\n{% endif %}\r\nc"),
    ("block_after_text", "text {% if true %}\nin{% endif %}"),
    ("set_block_ws", "{% set x %}\n  hello\n{% endset %}[{{ x }}]"),
    ("tabs_lstrip", "\t\t{% if true %}T{% endif %}\n"),
    # literals and printing
    ("print_scalars", "{{ none }}|{{ true }}|{{ False }}|{{ 42 }}|{{ -7 }}|{{ 1.0 }}|{{ 2.50 }}"),
    ("print_floats", "{% for x in floats %}{{ x }} {% endfor %}|{{ tiny }}|{{ 1e100 }}|{{ 0.1 + 0.2 }}"),
    ("print_containers", "{{ [1, 'a', none, true, 1.5] }}|{{ {'k': 'v', 1: [2]} }}|{{ (1,) }}|{{ () }}|{{ (1, 'x') }}"),
    ("print_strings_repr", "{{ [q, \"a'b\", 'x\\ny', u] }}"),
    ("print_nested", "{{ nested }}|{{ people[0] }}"),
    ("string_escapes", "{{ 'a\\tb\\\\c\\'d\\\"e\\x41\\u00e9\\U0001F600' }}"),
    ("string_concat_adjacent", "{{ 'a' 'b' \"c\" }}"),
    ("int_literals", "{{ 1_000 }}|{{ 0x1f }}|{{ 0o17 }}|{{ 0b101 }}|{{ 1.5e3 }}|{{ 2E-2 }}"),
    ("implicit_tuple", "{{ 1, 2 }}"),
    # operators
    ("arith", "{{ 7 // 2 }} {{ -7 // 2 }} {{ 7 % 3 }} {{ -7 % 3 }} {{ 7 % -3 }} {{ 2 ** 10 }} {{ 2 ** -1 }} {{ 7 / 2 }} {{ 4 / 2 }}"),
    ("arith_float", "{{ 7.5 // 2 }} {{ -7.5 % 2 }} {{ 1.5 * 2 }} {{ 3 - 0.5 }} {{ 2 ** 0.5 }} {{ 10 / 4 }}"),
    ("pow_left_assoc", "{{ 2 ** 3 ** 2 }}|{{ -2 ** 2 }}"),
    ("bool_arith", "{{ true + 1 }}|{{ true * 3 }}|{{ false - 1 }}"),
    ("string_ops", "{{ 'ab' + 'cd' }}|{{ 'ab' * 3 }}|{{ 3 * 'x' }}|{{ 'a' ~ 1 ~ none ~ true ~ 1.5 }}|{{ [1] + [2, 3] }}|{{ [0] * 3 }}"),
    ("concat_undefined", "[{{ 'a' ~ nothing ~ 'b' }}]"),
    ("comparisons", "{{ 1 < 2 < 3 }} {{ 3 > 2 > 2 }} {{ 1 == 1.0 }} {{ true == 1 }} {{ 'a' < 'b' }} {{ [1, 2] < [1, 3] }} {{ (1, 2) == [1, 2] }} {{ none == none }} {{ 'a' != 'a' }}"),
    ("in_ops", "{{ 'ell' in s }} {{ 2 in l }} {{ 'a' in d }} {{ 'zz' not in d }} {{ 4 not in l }} {{ 'x' in nothing }}"),
    ("logic_values", "{{ 0 or 'x' }}|{{ 'a' and 'b' }}|{{ none or [] }}|{{ 1 and 0 }}|{{ not 0 }}|{{ not 'a' }}"),
    ("ternary", "{{ 'y' if t else 'n' }}|{{ 'y' if no else 'n' }}|{{ 'y' if no }}|{{ 'a' if no else 'b' if t else 'c' }}"),
    ("unary", "{{ -n }}|{{ +f }}|{{ -(-2) }}|{{ -1|abs }}|{{ - f|abs }}"),
    ("precedence", "{{ 1 + 2 * 3 }}|{{ (1 + 2) * 3 }}|{{ 2 * 3 ~ 4 }}|{{ not 1 == 2 }}|{{ 1 + 1 is odd }}"),
    ("percent_format", "{{ '%s-%d' % ('a', 3) }}|{{ '%05.1f|%x|%r' % (3.14159, 255, 'q') }}|{{ '%(a)s!' % {'a': 1} }}|{{ '%s' % none }}|{{ '100%%' % () }}"),
    # subscripts and attributes
    ("subscripts", "{{ l[0] }} {{ l[-1] }} {{ s[1] }} {{ s[-1] }} {{ d['a'] }} {{ d.a }} {{ nested.x.y[2].z }} {{ nested['x']['y'][-1]['z'] }} {{ l.0 }}"),
    ("slices", "{{ l[1:] }} {{ l[:-1] }} {{ l[::-1] }} {{ l[::2] }} {{ s[:5] }} {{ s[-5:] }} {{ s[::-1] }} {{ u[1:4] }} {{ l[5:] }} {{ l[-10:1] }} {{ s[7:2:-2] }}"),
    ("dict_methods_vs_keys", "{{ d['items'] }}|{{ d.items() | list }}|{{ d.get('a') }}|{{ d.get('q', 'dflt') }}|{{ d.get('q') }}|{{ d.keys() | list }}|{{ d.values() | list }}"),
    ("missing_is_undefined", "[{{ d.nope }}][{{ l[10] }}][{{ none.x }}][{{ s.nope }}]{{ d.nope is defined }}{{ l[10] is defined }}"),
    ("message_access", "{% for m in messages %}{{ m.role }}:{{ m['content'] | length }};{% endfor %}"),
    ("tool_call_access", "{{ messages[2].tool_calls[0].function.name }}|{{ messages[2].tool_calls[0]['function']['arguments'] }}"),
    # string methods
    ("strip_family", "[{{ '  x  '.strip() }}][{{ '  x  '.lstrip() }}][{{ '  x  '.rstrip() }}][{{ 'xxhixx'.strip('x') }}][{{ '\\n\\nhi'.lstrip('\\n') }}][{{ 'abcba'.strip('ab') }}]"),
    ("affixes", "{{ s.startswith('Hell') }} {{ s.endswith('ld') }} {{ s.startswith(('x', 'H')) }} {{ s.endswith(('x', 'y')) }} {{ s.startswith('World', 7) }}"),
    ("split_family", "{{ 'a,b,,c'.split(',') }}|{{ '  a b  c '.split() }}|{{ 'a b c'.split(' ', 1) }}|{{ 'a,b,c'.rsplit(',', 1) }}|{{ '  a  b '.rsplit(None, 1) }}|{{ ''.split() }}|{{ 'x'.split(',') }}"),
    ("split_index", "{{ 'a</think>b</think>c'.split('</think>')[-1] }}|{{ 'k=v'.split('=')[0] }}"),
    ("case_methods", "{{ s.upper() }}|{{ s.lower() }}|{{ 'hello wORLD-x'.title() }}|{{ 'hELLO'.capitalize() }}|{{ u.upper() }}|{{ 'AbC'.swapcase() }}"),
    ("find_count", "{{ s.find('o') }} {{ s.rfind('o') }} {{ s.find('zz') }} {{ s.count('l') }} {{ u.find('c') }} {{ s.index('W') }}"),
    ("replace_method", "{{ s.replace('l', 'L') }}|{{ s.replace('l', 'L', 2) }}|{{ 'ab'.replace('', '-') }}"),
    ("join_method", "{{ ', '.join(['a', 'b']) }}|{{ '-'.join('xyz') }}|{{ ''.join([]) }}"),
    ("misc_str_methods", "{{ '42'.isdigit() }} {{ 'ab'.isalpha() }} {{ ' '.isspace() }} {{ 'AB'.isupper() }} {{ 'ab'.islower() }} {{ 'x'.center(5, '*') }} {{ '7'.zfill(3) }} {{ 'a'.ljust(3) }}| {{ 'a'.rjust(3) }} {{ 'a=b=c'.partition('=') }} {{ 'a=b=c'.rpartition('=') }}"),
    ("str_format", "{{ '{} and {}'.format('a', 1) }}|{{ '{0}{1}{0}'.format('x', 'y') }}|{{ '{name}!'.format(name='n') }}|{{ '{{}}'.format() }}|{{ '{!r}'.format('q') }}"),
    ("splitlines", "{{ ml.splitlines() }}|{{ 'a\\r\\nb\\rc'.splitlines() }}"),
    ("removeaffix", "{{ 'prefix_x'.removeprefix('prefix_') }}|{{ 'x.txt'.removesuffix('.txt') }}"),
    # filters
    ("f_trim_case", "[{{ '  a b  ' | trim }}][{{ 'xxaxx' | trim('x') }}][{{ s | upper }}][{{ s | lower }}][{{ 'hello wORLD (x-y) [z]' | title }}][{{ 'hELLO wORLD' | capitalize }}]"),
    ("f_length", "{{ s | length }} {{ u | length }} {{ l | count }} {{ d | length }} {{ nothing | length }} {{ messages | length }}"),
    ("f_default", "{{ nothing | default('d') }}|{{ none | default('d') }}|{{ none | default('d', true) }}|{{ '' | d('e', true) }}|{{ 0 | default(5) }}|{{ nothing | default }}|"),
    ("f_join", "{{ l | join(', ') }}|{{ l | join }}|{{ people | join('/', attribute='name') }}|{{ [1, none, 'a'] | join('-') }}"),
    ("f_first_last", "{{ l | first }} {{ l | last }} {{ s | first }} {{ s | last }} {{ d | first }} {{ d | last }} [{{ empty | first }}]"),
    ("f_list", "{{ s[:3] | list }} {{ d | list }} {{ (1, 2) | list }} {{ nothing | list }}"),
    ("f_items", "{% for k, v in d | items %}{{ k }}={{ v }};{% endfor %}|{{ nothing | items | list }}"),
    ("f_dictsort", "{{ d | dictsort }}|{{ {'b': 1, 'A': 2, 'a': 3} | dictsort }}|{{ {'b': 1, 'A': 2, 'a': 3} | dictsort(true) }}|{{ d | dictsort(by='value') }}|{{ d | dictsort(reverse=true) }}"),
    ("f_map", "{{ people | map(attribute='name') | list }}|{{ people | map(attribute='city', default='-') | list }}|{{ words | map('upper') | list }}|{{ l | map('string') | join(',') }}|{{ people | map(attribute='name') | map('lower') | join }}"),
    ("f_select_reject", "{{ l | select('odd') | list }}|{{ l | reject('odd') | list }}|{{ [0, 1, '', 'a', none] | select | list }}|{{ l | select('gt', 1) | list }}|{{ l | select('in', [1, 3]) | list }}|{{ words | reject('equalto', 'b') | list }}"),
    ("f_selectattr", "{{ people | selectattr('city') | map(attribute='name') | list }}|{{ people | rejectattr('city') | map(attribute='name') | list }}|{{ people | selectattr('age', 'equalto', 30) | map(attribute='name') | list }}|{{ messages | selectattr('role', 'equalto', 'user') | list | length }}|{{ people | selectattr('city', 'defined') | list | length }}"),
    ("f_sort_unique", "{{ words | sort }}|{{ words | sort(case_sensitive=true) }}|{{ words | sort(reverse=true) }}|{{ people | sort(attribute='age') | map(attribute='name') | list }}|{{ ['b', 'a', 'B', 'a'] | unique | list }}|{{ l | sort | first }}|{{ people | sort(attribute='age,name') | map(attribute='name') | list if false else '' }}"),
    ("f_min_max_sum", "{{ l | min }} {{ l | max }} {{ words | min }} {{ words | max }} {{ l | sum }} {{ people | sum(attribute='age') }} {{ [0.5, 1] | sum }} {{ people | max(attribute='age') }} [{{ empty | max }}]"),
    ("f_numbers", "{{ '42' | int }} {{ '4.7' | int }} {{ 'x' | int }} {{ 'x' | int(5) }} {{ 3.9 | int }} {{ '0x1A' | int(base=16) }} {{ ' 12 ' | int }} {{ '3.5' | float }} {{ 'q' | float }} {{ 2 | float }} {{ true | int }}"),
    ("f_round_abs", "{{ 2.5 | round }} {{ 3.5 | round }} {{ 2.675 | round(2) }} {{ 5 | round }} {{ 1.55 | round(1, 'floor') }} {{ 1.51 | round(1, 'ceil') }} {{ -3 | abs }} {{ -2.5 | abs }}"),
    ("f_replace", "{{ s | replace('o', '0') }}|{{ s | replace('l', 'L', 1) }}|{{ 5 | replace('5', 'five') }}"),
    ("f_reverse", "{{ s | reverse }}|{{ l | reverse | list }}"),
    ("f_string_safe", "{{ 5 | string ~ 1 }}|{{ [1] | string }}|{{ none | string }}|{{ '<b>' | safe }}|{{ '<a href=\"x\">&\\'' | e }}"),
    ("f_indent", "[{{ 'a\\nb\\n\\nc' | indent }}][{{ 'a\\nb' | indent(2, true) }}][{{ 'a\\n\\nb' | indent(2, blank=true) }}][{{ 'x\\ny' | indent('> ') }}]"),
    ("f_truncate", "{{ 'hello world this is long' | truncate(12) }}|{{ 'hello world this is long' | truncate(12, true) }}|{{ 'short' | truncate(3, leeway=5) }}|{{ 'hello world foo bar' | truncate(10, end='~', leeway=0) }}"),
    ("f_wordcount_center", "{{ 'one two, three_four 5' | wordcount }}|{{ 'x' | center(7) }}|"),
    ("f_batch_slice", "{{ [1,2,3,4,5] | batch(2) | list }}|{{ [1,2,3,4,5] | batch(2, 0) | list }}|{{ [1,2,3,4,5] | slice(2) | list }}|{{ [1,2,3,4,5] | slice(3, 'x') | list }}"),
    ("f_format", "{{ '%s has %d' | format('x', 3) }}|{{ '%(a)s' | format(a='kw') }}"),
    ("f_attr", "{{ d | attr('items') is callable }}|[{{ d | attr('a') }}]"),
    ("f_chain", "{{ ' A,b ,C ' | trim | lower | replace(' ', '') | title }}"),
    # tojson
    ("tojson_basic", "{{ messages | tojson }}"),
    ("tojson_options", "{{ d | tojson(indent=2) }}|{{ d | tojson(sort_keys=true) }}|{{ [1, {'a': []}] | tojson(indent=4) }}|{{ u | tojson }}|{{ u | tojson(ensure_ascii=true) }}|{{ d | tojson(separators=(',', ':')) }}"),
    ("tojson_values", "{{ [none, true, false, 1, 1.0, -0.5, 1e20, 'q\"\\\\\\n\\t\\x01', {}, [], (1, 2)] | tojson }}|{{ {1: 'a', none: 'b', true: 'c', 2.5: 'd'} | tojson }}|{{ '😀' | tojson(ensure_ascii=true) }}"),
    ("tojson_indent_str", "{{ {'a': [1, 2]} | tojson(indent='\\t') }}|{{ {'a': [1]} | tojson(indent=0) }}"),
    # tests
    ("tests_types", "{{ s is string }} {{ n is number }} {{ f is number }} {{ t is number }} {{ n is integer }} {{ t is integer }} {{ f is float }} {{ t is boolean }} {{ z is none }} {{ d is mapping }} {{ l is sequence }} {{ s is sequence }} {{ d is sequence }} {{ n is sequence }} {{ l is iterable }} {{ n is iterable }} {{ nothing is iterable }} {{ nothing is sequence }}"),
    ("tests_values", "{{ n is odd }} {{ n is even }} {{ 9 is divisibleby 3 }} {{ 9 is divisibleby(4) }} {{ t is true }} {{ no is false }} {{ 1 is true }} {{ n is eq 7 }} {{ n is equalto 7 }} {{ n is ne 7 }} {{ n is gt 3 }} {{ n is lt 3 }} {{ n is ge 7 }} {{ n is le 6 }} {{ 'a' is in 'cat' }} {{ 2 is in l }}"),
    ("tests_defined", "{{ nothing is defined }} {{ nothing is undefined }} {{ n is defined }} {{ d.a is defined }} {{ d.q is defined }} {{ d.q is not defined }} {{ messages[0].role is defined }}"),
    ("tests_misc", "{{ 'ABC' is upper }} {{ 'abc' is lower }} {{ range is callable }} {{ s is callable }} {{ none is sameas none }} {{ true is sameas true }} {{ 'upper' is filter }} {{ 'odd' is test }} {{ 'nope' is filter }} {{ s is escaped }}"),
    ("test_not_precedence", "{{ not nothing is defined }}|{{ not n is odd }}"),
    # loops
    ("loop_vars", "{% for x in l %}{{ loop.index }}{{ loop.index0 }}{{ loop.revindex }}{{ loop.revindex0 }}{{ loop.first }}{{ loop.last }}{{ loop.length }};{% endfor %}"),
    ("loop_prev_next", "{% for x in l %}[{{ loop.previtem }}|{{ loop.nextitem }}|{{ loop.previtem is defined }}]{% endfor %}"),
    ("loop_cycle_changed", "{% for x in [1, 1, 2, 2, 1] %}{{ loop.cycle('a', 'b') }}{{ loop.changed(x) }} {% endfor %}"),
    ("loop_else", "{% for x in empty %}x{% else %}none{% endfor %}|{% for x in l %}{{ x }}{% else %}none{% endfor %}"),
    ("loop_filter", "{% for x in l if x > 1 %}{{ x }}:{{ loop.index }}/{{ loop.length }} {% endfor %}"),
    ("loop_break_continue", "{% for x in range(10) %}{% if x == 2 %}{% continue %}{% endif %}{% if x == 5 %}{% break %}{% endif %}{{ x }}{% endfor %}"),
    ("loop_unpack", "{% for a, b in [[1, 2], (3, 4), 'xy'] %}{{ a }}{{ b }} {% endfor %}|{% for k, v in d.items() %}{{ k }}{{ v }}{% endfor %}|{% for (a, b) in [(1, 2)] %}{{ a + b }}{% endfor %}"),
    ("loop_over_dict_str", "{% for k in d %}{{ k }}{% endfor %}|{% for ch in u %}{{ ch }}.{% endfor %}"),
    ("loop_nested", "{% for a in [1, 2] %}{% for b in 'xy' %}{{ a }}{{ b }}{{ loop.index }}{% endfor %}{{ loop.index }} {% endfor %}"),
    ("loop_scope", "{% set x = 0 %}{% for i in range(3) %}{{ x }}{% set x = i %}{{ x }}{% endfor %}{{ x }}|{% for i in l %}{% set inner = 1 %}{% endfor %}{{ inner is defined }}"),
    ("loop_over_messages_reversed", "{% for m in messages[::-1] %}{{ m.role[0] }}{% endfor %}|{% for m in messages | reverse %}{{ loop.index0 }}{% endfor %}"),
    ("range", "{{ range(3) | list }}{{ range(1, 7, 2) | list }}{{ range(5, 0, -2) | list }}{{ range(0) | list }}{% for i in range(2) %}{{ i }}{% endfor %}"),
    ("loop_length_last_with_filter", "{% for m in messages if m.role != 'system' %}{{ m.role }}{{ '.' if not loop.last }}{% endfor %}"),
    # set / namespace / with
    ("set_forms", "{% set a = 1 %}{% set b, c = 2, 3 %}{% set e = [a, b, c] %}{{ e }}{% set x %}blk{{ a }}{% endset %}{{ x }}{% set y | upper %}low{% endset %}{{ y }}"),
    ("set_in_if_leaks", "{% if true %}{% set v = 'in' %}{% endif %}{{ v }}"),
    ("namespace", "{% set ns = namespace(count=0, s='') %}{% for x in l %}{% set ns.count = ns.count + x %}{% set ns.s = ns.s ~ x %}{% endfor %}{{ ns.count }}/{{ ns.s }}|{{ ns.missing is defined }}"),
    ("namespace_dict_arg", "{% set ns = namespace({'a': 1}, b=2) %}{{ ns.a }}{{ ns.b }}"),
    ("with_block", "{% set a = 5 %}{% with a = 1, b = a %}{{ a }}{{ b }}{% endwith %}{{ a }}"),
    ("dict_global", "{{ dict(a=1, b='x') }}|{{ dict([('k', 'v')]) }}"),
    ("set_rebinds_messages", "{% set messages = messages[1:] %}{{ messages | length }}"),
    # macros
    ("macro_basic", "{% macro greet(name, punct='!') %}Hi {{ name }}{{ punct }}{% endmacro %}{{ greet('A') }} {{ greet('B', '?') }} {{ greet(punct='.', name='C') }} [{{ greet() }}]"),
    ("macro_varargs_kwargs", "{% macro f(a) %}{{ a }}{{ varargs }}{{ kwargs }}{% endmacro %}{{ f(1, 2, 3, x=4) }}"),
    ("macro_caller", "{% macro wrap(tag) %}<{{ tag }}>{{ caller() }}</{{ tag }}>{% endmacro %}{% call wrap('b') %}bold {{ s }}{% endcall %}|{% macro each(xs) %}{% for x in xs %}{{ caller(x) }}{% endfor %}{% endmacro %}{% call(item) each([1, 2]) %}[{{ item }}]{% endcall %}"),
    ("macro_recursion", "{% macro fact(n) %}{% if n <= 1 %}1{% else %}{{ n * fact(n - 1) | int }}{% endif %}{% endmacro %}{{ fact(5) }}"),
    ("macro_scope", "{% set g = 'G' %}{% macro m() %}{{ g }}{{ loc is defined }}{% endmacro %}{% for loc in [1] %}{{ m() }}{% endfor %}{% set g = 'H' %}{{ m() }}"),
    ("macro_default_uses_arg", "{% macro f(a, b=a * 2) %}{{ a }},{{ b }}{% endmacro %}{{ f(3) }}"),
    ("macro_returns_string", "{% macro m() %} x {% endmacro %}[{{ m() | trim }}][{{ m() ~ 'y' }}][{{ m() | length }}]"),
    ("macro_json_to_type", "{% macro t(spec) %}{% if spec.type == 'array' %}list[{{ t(spec['items']) }}]{% elif spec.type == 'string' %}str{% else %}Any{% endif %}{% endmacro %}{{ t({'type': 'array', 'items': {'type': 'array', 'items': {'type': 'string'}}}) }}"),
    # filter blocks, generation, print
    ("filter_block", "{% filter upper %}shout {{ s }}{% endfilter %}|{% filter trim | replace('a', 'b') %}  aaa  {% endfilter %}"),
    ("generation_block", "A{% generation %}gen {{ n }}{% endgeneration %}B"),
    ("print_stmt", "{% print 'p' ~ n %}"),
    # globals
    ("strftime", "{{ strftime_now('%Y-%m-%d') }}|{{ strftime_now('%d %b %Y') }}|{{ strftime_now('%B %d, %Y') }}|{{ strftime_now('%A %H:%M') }}"),
    ("raise_in_branch", "{% if false %}{{ raise_exception('never') }}{% endif %}ok"),
    # undefined behaviour
    ("undefined_prints_empty", "[{{ nothing }}][{{ nothing | string }}][{{ nothing | trim }}][{{ nothing | upper }}][{{ nothing | join }}][{{ nothing | first }}]"),
    ("undefined_comparisons", "{{ nothing == nothing }} {{ nothing == 1 }} {{ nothing != 'a' }} {{ not nothing }} {{ 'a' in nothing }} {{ nothing in l }}"),
    ("undefined_dict_missing_cmp", "{{ messages[9] == 'x' }}|{{ d.q == none }}"),
    # whitespace stress close to real templates
    ("chatml_like", "{%- for message in messages %}\n    {{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>\\n' }}\n{%- endfor %}\n{%- if add_generation_prompt %}\n    {{- '<|im_start|>assistant\\n' }}\n{%- endif %}\n"),
    ("llama3_like", "{{- bos_token }}\n{%- set date_string = strftime_now('%d %b %Y') %}\n{%- for message in messages %}\n{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | trim + '<|eot_id|>' }}\n{%- endfor %}\n{%- if add_generation_prompt %}\n{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}\n{%- endif %}"),
    ("mixed_text_lines", "Line A\n{% for m in messages %}\n  - {{ m.role }}\n{% endfor %}\nEnd\n"),
    ("comment_only_line", "a\n{# comment #}\nb\n   {#- c #}\nc"),
    # iterators and views (generators from map/select, reversed(), dict.items())
    ("generator_truthy", "{{ 'T' if empty | select else 'F' }}|{{ 'T' if empty | map('upper') else 'F' }}|{{ 'T' if d.items() else 'F' }}|{{ 'T' if {}.items() else 'F' }}|{{ 'T' if empty | reverse else 'F' }}"),
    ("generator_ops", "{{ l | map('string') | join }}|{{ (l | select('odd') | list)[0] }}|[{{ (l | select('odd'))[0] }}]|{{ 3 in l | select('odd') }}|{{ l | select('odd') is sequence }}|{{ l | select('odd') is iterable }}|{{ d.items() | length }}|{{ d.keys() | list }}"),
    ("views_print", "{{ d.items() }}|{{ d.keys() }}|{{ d.values() }}|{{ d.items() | last }}"),
    ("map_on_none", "{{ z | map('upper') | list }}|{{ z | selectattr('a') | list }}|{{ 0 | reject | list }}"),
    ("reverse_kinds", "{{ l | reverse | list }}|{{ d | reverse | list }}|{{ l | select('odd') | reverse }}|{{ d.items() | reverse | list }}"),
    ("err_generator_len", "{{ l | select('odd') | length }}"),
    ("err_generator_tojson", "{{ l | map('string') | tojson }}"),
    ("err_generator_last", "{{ l | select('odd') | last }}"),
    ("err_items_tojson", "{{ d.items() | tojson }}"),
    ("range_object", "{{ range(3) }}|{{ range(1, 9, 3) }}|{{ range(5)[1:3] }}|{{ range(4)[-1] }}|{{ range(0) | length }}|{{ 2 in range(3) }}|{{ range(3) is sequence }}|{{ range(3) | list }}"),
    ("err_range_tojson", "{{ range(3) | tojson }}"),
    ("sort_attributes", "{{ people | sort(attribute='age,name') | map(attribute='name') | list }}|{{ 'cab' | sort(attribute='x') | join }}"),
    ("err_sort_missing_attribute", "{{ people | sort(attribute='city') | list }}"),
    ("percent_undefined", "[{{ '' % nothing }}][{{ '%s' % nothing }}][{{ 'a' % [1] }}]"),
    ("truncate_non_string", "{{ l | truncate(5) }}|{{ nothing | truncate }}|"),
    ("err_truncate_bool", "{{ false | truncate(5) }}"),
    ("err_indent_list", "{{ l | indent(2) }}"),
    ("err_unhashable_in", "{{ [1] in d }}"),
    ("err_unhashable_key", "{{ {[1]: 2} }}"),
    ("err_unique_unhashable", "{{ messages | unique | list }}"),
    ("err_slice_none", "{{ z[:2] }}"),
    ("err_slice_dict", "{{ d[1:] }}"),
    ("err_attr_undefined", "{{ nothing | attr('x') }}"),
    # markupsafe: |safe and |escape make Markup, and Markup + str escapes the str
    ("markup_plus", "{{ 'a<b'|safe + '<i>' }}|{{ '<i>' + 'a'|safe }}|{{ 'x'|safe ~ '<i>' }}|{{ ('<'|e) + '&' }}|{{ '<'|e|e }}|{{ 'q'|safe + '\"' + 'r' }}"),
    ("markup_repr", "{{ ['<a>' | safe, '<b>' | e] }}"),
    ("markup_json", "{{ \"f: \"|safe + {'a': '<b>'} | tojson }}"),
    # unknown filters and tests wait until they run inside if blocks (jinja2's soft frames)
    ("unknown_filter_in_if", "{% if false %}{{ x | nosuchfilter }}{% endif %}{{ 'ok' if true else x | nosuch2 }}{% if false %}{% set y = x | nosuch3 %}{% endif %}{% if x is nosuchtest %}{% endif %}"),
    ("err_unknown_filter_runs", "{% if true %}{{ s | nosuchfilter }}{% endif %}"),
    ("syn_unknown_filter_in_for", "{% if true %}{% for x in l %}{{ x | nosuchfilter }}{% endfor %}{% endif %}"),
    ("syn_unknown_filter_in_macro", "{% if true %}{% macro m() %}{{ 1 | nosuchfilter }}{% endmacro %}{% endif %}"),
    ("unknown_filter_for_iter_in_if", "{% if false %}{% for x in l | nosuch %}{% endfor %}{% endif %}ok"),
    # errors
    ("err_raise", "{{ raise_exception('Only user and assistant roles are supported!') }}"),
    ("err_raise_in_loop", "{% for m in messages %}{% if m.role == 'tool' %}{{ raise_exception('no tools: ' ~ loop.index) }}{% endif %}{% endfor %}"),
    ("err_undefined_attr", "{{ nothing.attr }}"),
    ("err_undefined_attr_dict", "{{ d.nope.deeper }}"),
    ("err_undefined_add", "{{ nothing + 1 }}"),
    ("err_undefined_call", "{{ nothing() }}"),
    ("err_iterate_none", "{% for x in z %}{% endfor %}"),
    ("err_iterate_int", "{% for x in n %}{% endfor %}"),
    ("err_str_plus_int", "{{ 'a' + 1 }}"),
    ("err_int_plus_str", "{{ 1 + 'a' }}"),
    ("err_list_plus_str", "{{ [1] + 'a' }}"),
    ("err_compare", "{{ 1 < 'a' }}"),
    ("err_div_zero", "{{ 1 / 0 }}"),
    ("err_floordiv_zero", "{{ 1 // 0 }}"),
    ("err_len_int", "{{ n | length }}"),
    ("err_unpack", "{% for a, b in [[1, 2, 3]] %}{% endfor %}"),
    ("err_unpack_short", "{% set a, b = [1] %}"),
    ("err_not_callable", "{{ s() }}"),
    ("err_join_int", "{{ ', '.join([1, 2]) }}"),
    ("err_tojson_undefined", "{{ nothing | tojson }}"),
    ("err_list_append", "{{ l.append(4) }}"),
    ("err_dict_update", "{{ d.update({'x': 1}) }}"),
    ("err_macro_too_many", "{% macro f(a) %}{% endmacro %}{{ f(1, 2) }}"),
    ("err_macro_kw", "{% macro f(a) %}{% endmacro %}{{ f(b=1) }}"),
    ("err_ns_assign", "{% set x = 1 %}{% set x.y = 2 %}"),
    ("err_range_big", "{{ range(1000000) | length }}"),
    ("err_dictsort_list", "{{ l | dictsort }}"),
    ("err_items_list", "{% for x in l | items %}{% endfor %}"),
    ("err_in_int", "{{ 1 in 2 }}"),
    ("err_in_str_int", "{{ 1 in 'abc' }}"),
    ("err_split_empty", "{{ 'a'.split('') }}"),
    ("err_neg_str", "{{ -'a' }}"),
    # syntax errors (jinja2 refuses at parse time)
    ("syn_unknown_tag", "{% frobnicate %}"),
    ("syn_unknown_filter", "{{ x | frobnicate }}"),
    ("syn_unknown_test", "{{ x is frobnicate }}"),
    ("syn_unclosed_if", "{% if true %}x"),
    ("syn_unclosed_var", "{{ x "),
    ("syn_bad_expr", "{{ 1 + }}"),
    ("syn_endfor_mismatch", "{% for x in l %}{% endif %}"),
    ("syn_unclosed_comment", "{# open"),
    ("syn_do_tag", "{% do l.append(1) %}"),
]


def render(template, variables):
    try:
        return {"expect": env().from_string(template).render(**variables)}
    except jinja2.exceptions.TemplateSyntaxError as e:
        return {"error": f"TemplateSyntaxError: {e.message}", "syntax": True}
    except jinja2.exceptions.TemplateError as e:
        kind = type(e).__name__
        exact = kind == "TemplateError"   # raise_exception: slmops says the same words
        return {"error": f"{kind}: {e}", "exact": exact} if not exact else \
               {"error": str(e), "exact": True}
    except Exception as e:   # TypeError, ValueError, ZeroDivisionError ... from Python
        return {"error": f"{type(e).__name__}: {e}"}


def main():
    out = []
    for case in CASES:
        name, template = case[0], case[1]
        # a fresh copy each time: jinja2's indent filter extends a list it is given
        variables = copy.deepcopy(dict(VARS, messages=MESSAGES, tools=None,
                                       add_generation_prompt=True, bos_token="<s>",
                                       eos_token="</s>"))
        if len(case) > 2:
            variables.update(case[2])
        entry = {"name": name, "template": template}
        entry.update(render(template, variables))
        out.append(entry)
    doc = {"generator": "tests/chat/make-cases.py, jinja2 " + jinja2.__version__,
           "vars": dict(VARS, messages=MESSAGES), "cases": out}
    json.dump(doc, sys.stdout, ensure_ascii=False, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
