// winoforge_pool: FINN's Pool (MaxPool, AccPool, QuantAvgPool) after a depthwise
// sliding-window generator, as plain synthesizable SystemVerilog.
//
// Stream in : per output pixel, per channel fold (Channels/PE), K2 beats of PE lanes
//             (the depthwise ConvolutionInputGenerator's order), lane p at bits
//             [p*IN_W +: IN_W] (FINN: element 0 least significant).
// Stream out: per output pixel and fold one beat of PE lanes of OUT_W bits.
// FUNCTION  : 0 = max, 1 = sum (AccPool), 2 = sum >>> SHIFT (QuantAvgPool).
// One input beat per cycle: Channels/PE * K2 cycles per output pixel, as FINN's
// Pool.get_exp_cycles.  Valid/ready on both sides, any bubbles and back-pressure.
module winoforge_pool #(
    parameter int PE = 1,
    parameter int K2 = 4,
    parameter int IN_W = 4,
    parameter int IN_SIGNED = 0,
    parameter int OUT_W = 4,
    parameter int FUNCTION = 0,
    parameter int SHIFT = 0,
    parameter int ACC_W = 8
) (
    input  logic                  ap_clk,
    input  logic                  ap_rst_n,
    input  logic [PE*IN_W-1:0]    in_data,
    input  logic                  in_valid,
    output logic                  in_ready,
    output logic [PE*OUT_W-1:0]   out_data,
    output logic                  out_valid,
    input  logic                  out_ready
);
    localparam int KW = K2 > 1 ? $clog2(K2) : 1;

    logic [KW-1:0] k;
    logic signed [ACC_W-1:0] acc [PE];
    logic signed [ACC_W-1:0] nxt [PE];

    wire out_free = !out_valid || out_ready;
    wire last = (k == KW'(K2 - 1));
    assign in_ready = !last || out_free;
    wire in_fire = in_valid && in_ready;

    function automatic logic signed [ACC_W-1:0] extend(input logic [IN_W-1:0] v);
        if (IN_SIGNED != 0) extend = ACC_W'($signed(v));
        else extend = ACC_W'(v);
    endfunction

    always_comb begin
        for (int p = 0; p < PE; p++) begin
            logic signed [ACC_W-1:0] x;
            x = extend(in_data[p*IN_W +: IN_W]);
            if (k == '0) nxt[p] = x;
            else if (FUNCTION == 0) nxt[p] = (x > acc[p]) ? x : acc[p];
            else nxt[p] = acc[p] + x;
        end
    end

    always_ff @(posedge ap_clk) begin
        if (!ap_rst_n) begin
            k <= '0;
            out_valid <= 1'b0;
        end else begin
            if (out_valid && out_ready) out_valid <= 1'b0;
            if (in_fire) begin
                for (int p = 0; p < PE; p++) acc[p] <= nxt[p];
                if (last) begin
                    k <= '0;
                    out_valid <= 1'b1;
                    for (int p = 0; p < PE; p++)
                        out_data[p*OUT_W +: OUT_W] <= OUT_W'(nxt[p] >>> (FUNCTION == 2 ? SHIFT : 0));
                end else begin
                    k <= k + 1'b1;
                end
            end
        end
    end
endmodule
