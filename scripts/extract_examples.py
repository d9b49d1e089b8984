"""Writes the YAML a user copies from the docs (every module's EXAMPLES, and the yaml
blocks of the READMEs) into OUT as tasks files, playbooks and vars files, so that
scripts/lint.sh holds them to the same ansible-lint profile as the collection."""

import ast
import pathlib
import re
import sys

PLAY = re.compile(r"^- (name: .*\n  )?hosts:", re.M)
YAML_BLOCK = re.compile(r"^```ya?ml\n(.*?)^```", re.M | re.S)


def module_examples(module):
    for node in ast.parse(module.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "EXAMPLES" for t in node.targets):
            return node.value.value
    return None


def kind_of(block):
    if PLAY.search(block):
        return "playbooks"
    return "tasks" if block.lstrip().startswith("- ") else "vars"


def main():
    repo, out = (pathlib.Path(arg) for arg in sys.argv[1:3])
    found = {}
    for module in sorted((repo / "plugins" / "modules").glob("*.py")):
        examples = module_examples(module)
        if examples:
            found[("tasks", f"{module.stem}.yml")] = examples
    readmes = [repo / "README.md", repo / "playbooks" / "README.md", *sorted(repo.glob("roles/*/README.md"))]
    for readme in readmes:
        label = "README" if readme.parent == repo else readme.parent.name
        for index, block in enumerate(YAML_BLOCK.findall(readme.read_text(encoding="utf-8"))):
            found[(kind_of(block), f"{label}-{index}.yml")] = block
    for (kind, name), text in found.items():
        (out / kind).mkdir(parents=True, exist_ok=True)
        (out / kind / name).write_text("---\n" + text.lstrip("\n"), encoding="utf-8")
    print(f"{len(found)} example files")


if __name__ == "__main__":
    main()
