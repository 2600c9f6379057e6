#!/usr/bin/env sh
# Install Debian's graphviz (for `dot`) when it is missing. Diagrams need it; linting does not,
# so a failed install is reported and does not stop the caller.
command -v dot >/dev/null 2>&1 && exit 0
if [ "$(id -u)" = 0 ]; then
    SUDO=""
elif command -v sudo >/dev/null 2>&1; then
    SUDO="sudo"
else
    echo "graphviz is missing and this user cannot install it: run 'apt-get install graphviz' as root" >&2
    exit 0
fi
echo "installing Debian's graphviz for dot ..." >&2
if $SUDO apt-get update -qq >/dev/null && \
   DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq graphviz >/dev/null; then
    echo "installed: $(dot -V 2>&1)" >&2
else
    echo "could not install graphviz; diagrams will not render (linting is unaffected)" >&2
fi
exit 0
