// Validates an AsyncAPI document with @asyncapi/parser, the reference implementation: any
// diagnostic of severity error fails, warnings are printed.
import { readFileSync } from 'node:fs';
import { Parser } from '@asyncapi/parser';

const path = process.argv[2] ?? 'openapi/asyncapi.json';
const parser = new Parser();
const { document, diagnostics } = await parser.parse(readFileSync(path, 'utf8'));
const severities = ['error', 'warning', 'info', 'hint'];
let errors = 0;
for (const d of diagnostics) {
  const severity = severities[d.severity] ?? String(d.severity);
  if (d.severity === 0) errors += 1;
  console.log(`${severity}: ${d.message} at ${(d.path ?? []).join('.')}`);
}
if (errors > 0 || !document) {
  console.error(`${path}: ${errors} error(s)`);
  process.exit(1);
}
console.log(`${path}: valid AsyncAPI ${document.version()} with ${document.allMessages().length} messages`);
