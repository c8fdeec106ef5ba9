/**
 * Where a JSON text first goes wrong, for error messages. `JSON.parse` words its errors
 * differently in each Node version and sometimes quotes the whole input; this scanner runs only
 * after `JSON.parse` has failed and says where and what in words that do not change.
 */
export interface JsonSyntaxError {
  readonly line: number;
  readonly col: number;
  readonly reason: string;
}

class Stop {
  constructor(
    readonly pos: number,
    readonly reason: string,
  ) {}
}

export function findJsonSyntaxError(text: string): JsonSyntaxError | undefined {
  let i = 0;
  const show = (p: number) => (p >= text.length ? 'end of input' : JSON.stringify(text[p]));
  const stop = (reason: string, at = i): never => {
    throw new Stop(at, reason);
  };
  const unexpected = (): never => stop(`unexpected ${show(i)}`);
  const ws = () => {
    while (i < text.length && ' \t\n\r'.includes(text[i]!)) i++;
  };
  const literal = (word: string) => {
    if (text.startsWith(word, i)) i += word.length;
    else unexpected();
  };
  const string = () => {
    const start = i++;
    for (;;) {
      if (i >= text.length) stop('unterminated string', start);
      const c = text.charCodeAt(i);
      if (c === 0x22) break;
      if (c < 0x20) stop('control character in a string (escape it)');
      if (c === 0x5c) {
        const e = text[i + 1];
        if (e === 'u' && /^[0-9a-fA-F]{4}$/.test(text.slice(i + 2, i + 6))) i += 6;
        else if (e !== undefined && '"\\/bfnrt'.includes(e)) i += 2;
        else stop('invalid escape in a string');
      } else i++;
    }
    i++;
  };
  const number = () => {
    const m = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
    m.lastIndex = i;
    if (!m.exec(text)) stop('invalid number');
    i = m.lastIndex;
  };
  const value = (): void => {
    ws();
    const c = text[i];
    if (c === '{') {
      i++;
      ws();
      if (text[i] === '}') return void i++;
      for (;;) {
        ws();
        if (text[i] !== '"') stop(`expected a string key, got ${show(i)}`);
        string();
        ws();
        if (text[i] !== ':') stop(`expected ':' after a key, got ${show(i)}`);
        i++;
        value();
        ws();
        if (text[i] === ',') i++;
        else if (text[i] === '}') return void i++;
        else stop(`expected ',' or '}', got ${show(i)}`);
      }
    }
    if (c === '[') {
      i++;
      ws();
      if (text[i] === ']') return void i++;
      for (;;) {
        value();
        ws();
        if (text[i] === ',') i++;
        else if (text[i] === ']') return void i++;
        else stop(`expected ',' or ']', got ${show(i)}`);
      }
    }
    if (c === '"') return string();
    if (c === 't') return literal('true');
    if (c === 'f') return literal('false');
    if (c === 'n') return literal('null');
    if (c === '-' || (c !== undefined && c >= '0' && c <= '9')) return number();
    unexpected();
  };
  try {
    value();
    ws();
    if (i < text.length) stop(`unexpected ${show(i)} after the end of the value`);
    return undefined;
  } catch (e) {
    if (!(e instanceof Stop)) throw e;
    const before = text.slice(0, e.pos).split('\n');
    return { line: before.length, col: before.at(-1)!.length + 1, reason: e.reason };
  }
}
