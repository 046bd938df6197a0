import { Ajv2020 } from 'ajv/dist/2020.js';

/**
 * Judges a request by the published OpenAPI document alone, as a client generated from it would:
 * path and query parameters against their schemas (query text coerced to the documented type), the
 * body against the schema of its media type. Unknown query parameters are not judged: OpenAPI cannot
 * say that an operation refuses them.
 */

type Schema = Record<string, unknown>;
type Parameter = { name: string; in: string; required?: boolean; schema?: Schema };
export type Operation = { operationId: string; parameters?: Parameter[]; requestBody?: { content: Record<string, { schema?: Schema }> }; responses: Record<string, unknown> };
export type Document = { paths: Record<string, Record<string, Operation>>; components?: Record<string, unknown> };

export type DocRequest = { params?: Record<string, string>; query?: Record<string, string>; body?: unknown; contentType?: string };

const DOC_ID = 'openapi.json';

export function documentJudge(doc: Document) {
  const operations = new Map<string, Operation>();
  for (const item of Object.values(doc.paths)) for (const op of Object.values(item)) operations.set(op.operationId, op);
  // Components are reachable from any compiled fragment by rewriting its local refs to the document.
  const relocate = (schema: Schema): Schema => JSON.parse(JSON.stringify(schema).replaceAll('"#/components/', `"${DOC_ID}#/components/`));
  const make = (coerceTypes: boolean) => {
    const ajv = new Ajv2020({ strict: false, allErrors: true, coerceTypes, validateFormats: false });
    ajv.addSchema({ components: doc.components ?? {} }, DOC_ID);
    return ajv;
  };
  const forParams = make(true);
  const forBodies = make(false);

  const problemsOf = (errors: unknown) => (errors as { instancePath: string; message?: string }[] | null | undefined)?.map((e) => `${e.instancePath} ${e.message}`) ?? [];

  /** What the document says is wrong with the request; empty when it accepts it. */
  return function judge(operationId: string, request: DocRequest): string[] {
    const op = operations.get(operationId);
    if (!op) throw new Error(`no operation ${operationId} in the document`);
    const problems: string[] = [];
    for (const param of op.parameters ?? []) {
      if (param.in !== 'path' && param.in !== 'query') continue;
      const value = (param.in === 'path' ? request.params : request.query)?.[param.name];
      if (value === undefined) {
        if (param.required) problems.push(`${param.in} ${param.name} is required`);
        continue;
      }
      const validate = forParams.compile({ type: 'object', properties: { v: relocate(param.schema ?? {}) } });
      if (!validate({ v: value })) problems.push(...problemsOf(validate.errors).map((p) => `${param.in} ${param.name}: ${p}`));
    }
    if (op.requestBody) {
      const type = request.contentType ?? 'application/json';
      const media = op.requestBody.content[type];
      if (!media) problems.push(`body type ${type} is not documented`);
      else if (request.body === undefined) problems.push('body is required');
      else if (media.schema) {
        const validate = forBodies.compile(relocate(media.schema));
        if (!validate(request.body)) problems.push(...problemsOf(validate.errors).map((p) => `body${p}`));
      }
    }
    return problems;
  };
}

/** What a document's request part can say: whether it takes a query or body, and whether any input could break its schemas. */
export function requestShape(op: Operation): { takesInput: boolean; canRefuse: boolean } {
  const query = (op.parameters ?? []).filter((p) => p.in === 'query');
  // An optional query parameter whose schema is just a string accepts every query text.
  const constrains = (p: Parameter) => p.required || Object.keys(p.schema ?? {}).some((k) => k !== 'description' && !(k === 'type' && p.schema?.type === 'string'));
  return { takesInput: Boolean(op.requestBody) || query.length > 0, canRefuse: Boolean(op.requestBody) || query.some(constrains) };
}
