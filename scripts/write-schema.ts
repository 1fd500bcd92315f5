// Publishes the pipeline JSON Schema for editors (yaml-language-server, VS Code).
import { writeFileSync } from 'node:fs';
import { publishedSchemaText } from '../src/runner/pipeline-schema.js';

const target = new URL('../schema/pipeline.schema.json', import.meta.url);
writeFileSync(target, publishedSchemaText());
console.log(`wrote ${target.pathname}`);
