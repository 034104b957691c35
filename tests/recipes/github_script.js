// Runs the `script:` of an actions/github-script step against a pretend pull request whose
// comments live in a JSON file: what the step would create, update and delete on GitHub.
// node github_script.js SCRIPT_FILE STATE_FILE  (STATE_FILE: {"comments": [...], "next": N})
const fs = require('fs');
const [script, stateFile] = process.argv.slice(2);
const state = JSON.parse(fs.readFileSync(stateFile, 'utf8'));
const calls = [];
const comment = (id) => state.comments.find((c) => c.id === id);
const github = {
  paginate: async (method, args) => {
    if (method !== github.rest.issues.listComments || args.issue_number !== 7) throw new Error('unexpected list');
    return state.comments.map((c) => ({ ...c }));
  },
  rest: {
    issues: {
      listComments: async () => { throw new Error('use github.paginate'); },
      createComment: async ({ issue_number, body }) => {
        if (issue_number !== 7) throw new Error('wrong pull request');
        const c = { id: state.next++, body, user: { type: 'Bot' } };
        state.comments.push(c);
        calls.push(['create', c.id]);
      },
      updateComment: async ({ comment_id, body }) => {
        comment(comment_id).body = body;
        calls.push(['update', comment_id]);
      },
      deleteComment: async ({ comment_id }) => {
        state.comments = state.comments.filter((c) => c.id !== comment_id);
        calls.push(['delete', comment_id]);
      },
    },
  },
};
const context = { repo: { owner: 'team', repo: 'lineworks' }, issue: { number: 7 } };
const AsyncFunction = Object.getPrototypeOf(async () => {}).constructor;
new AsyncFunction('github', 'context', 'require', fs.readFileSync(script, 'utf8'))(github, context, require)
  .then(() => {
    fs.writeFileSync(stateFile, JSON.stringify(state));
    process.stdout.write(JSON.stringify(calls));
  })
  .catch((e) => { console.error(e); process.exit(1); });
