import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { selfCommand, shellJoin, shellQuote } from '../../src/util/shell.js';

/** What sh makes of a command line: its arguments, one per line, NUL-separated. */
function shWords(line: string): string[] {
  const out = execFileSync('sh', ['-c', `printf '%s\\0' ${line}`], { encoding: 'utf8' });
  return out.split('\0').slice(0, -1);
}

describe('shellQuote', () => {
  it('leaves plain paths and words bare', () => {
    assert.equal(shellQuote('/usr/bin/node'), '/usr/bin/node');
    assert.equal(shellQuote('token'), 'token');
  });

  it('sh reads every quoted argument back unchanged', () => {
    const nasty = ["it's", 'a b', '$(touch /tmp/x)', '`id`', 'x;y', '"q"', '', '*', 'tab\there', 'new\nline', "''", '\\'];
    assert.deepEqual(shWords(shellJoin(nasty)), nasty);
  });

  it('selfCommand names this node and this script', () => {
    const cmd = selfCommand();
    assert.equal(cmd[0], process.execPath);
    assert.ok(!shellJoin(cmd).includes('npx'));
  });
});
