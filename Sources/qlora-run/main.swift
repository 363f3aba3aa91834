import Foundation
import PipelineCore
import Stages

// Entry point: all argument parsing and dispatch lives in CommandLineInterface (Sources/qlora-run).
print("qlora-run (skeleton)")
