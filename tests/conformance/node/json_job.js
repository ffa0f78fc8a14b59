// The protocol of the scripts pytest runs (tests/conformance/node_support.py run_node): one
// JSON document on stdin, one JSON line answered on stdout; a crash exits 2 with its stack
// on stderr, which pytest attaches to the failure.
'use strict';

function readStdin() {
  return new Promise((resolve, reject) => {
    const chunks = [];
    process.stdin.on('data', (c) => chunks.push(c));
    process.stdin.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    process.stdin.on('error', reject);
  });
}

// Run `answer(document)` (sync or async) on the document from stdin and print its result.
function runJob(answer) {
  readStdin()
    .then((text) => answer(JSON.parse(text)))
    .then((result) => process.stdout.write(JSON.stringify(result) + '\n'))
    .catch((e) => {
      process.stderr.write(`${(e && e.stack) || e}\n`);
      process.exit(2);
    });
}

module.exports = { runJob };
