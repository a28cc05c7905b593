// winoforge_duplicate_streams: FINN's DuplicateStreams as plain SystemVerilog -- every input
// beat goes to each of N output streams.  A combinational fork: output i offers the beat
// until it took it (sent[i]); the input beat is consumed in the cycle where every output has
// taken it or takes it now (ready/valid join), so no output sees a beat twice or misses one
// and each output may stall independently.  No storage: the stitcher's FIFOs decouple.
module winoforge_duplicate_streams #(
    parameter int W = 8,   // bits per beat
    parameter int N = 2    // output streams
) (
    input  logic           ap_clk,
    input  logic           ap_rst_n,
    input  logic [W-1:0]   in_data,
    input  logic           in_valid,
    output logic           in_ready,
    output logic [N*W-1:0] out_data,
    output logic [N-1:0]   out_valid,
    input  logic [N-1:0]   out_ready
);
    logic [N-1:0] sent;
    assign in_ready = &(sent | out_ready);
    assign out_valid = {N{in_valid}} & ~sent;
    assign out_data = {N{in_data}};

    always_ff @(posedge ap_clk) begin
        if (!ap_rst_n) sent <= '0;
        else if (in_valid && in_ready) sent <= '0;
        else sent <= sent | (out_valid & out_ready);
    end
endmodule
