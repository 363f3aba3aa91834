// qlora-run entry point. The command line lives in the CLI target (Sources/CLI): QloraRun.main
// joins an MPI job under a launcher, parses, dispatches and returns the exit status.
import Foundation
import CLI

exit(QloraRun.main(Array(CommandLine.arguments.dropFirst())))
